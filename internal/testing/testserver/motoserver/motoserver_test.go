package motoserver_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyferry/keyferry/internal/testing/testserver/motoserver"
)

func TestStartAnswersAndStopReleasesThePort(t *testing.T) {
	s := motoserver.Start(t)
	if !strings.HasPrefix(s.Endpoint(), "http://127.0.0.1:") {
		t.Fatalf("Endpoint() = %q, want a loopback URL", s.Endpoint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Reset(ctx); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	s.Stop()
	s.Stop() // idempotent
	resp, err := http.Get(s.Endpoint() + "/moto-api/data.json")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("moto still answers on %s after Stop", s.Endpoint())
	}
}

func TestRunReportsAMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-moto_server")
	t.Setenv(motoserver.EnvBinary, missing)
	_, err := motoserver.Run(context.Background(), motoserver.Options{StartTimeout: 10 * time.Second})
	if err == nil {
		t.Fatal("Run with a missing binary succeeded")
	}
	if !strings.Contains(err.Error(), missing) {
		t.Fatalf("error %q does not name the missing binary", err)
	}
}
