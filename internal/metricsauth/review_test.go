package metricsauth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestWithAuthenticatedGroup(t *testing.T) {
	cases := []struct {
		name, user   string
		groups, want []string
	}{
		{"an authenticated user joins system:authenticated", "alice", []string{"dev"}, []string{"dev", allAuthenticated}},
		{"a user without groups joins system:authenticated", "alice", nil, []string{allAuthenticated}},
		{"a member of system:authenticated is unchanged", "alice", []string{allAuthenticated, "dev"}, []string{allAuthenticated, "dev"}},
		{"a member of system:unauthenticated is unchanged", "bob", []string{allUnauthenticated}, []string{allUnauthenticated}},
		{"the anonymous user is unchanged", anonymousUser, []string{"x"}, []string{"x"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := slices.Clone(c.groups)
			got := withAuthenticatedGroup(c.user, in)
			if !slices.Equal(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
			if !slices.Equal(in, c.groups) {
				t.Errorf("modified its argument: %v", in)
			}
		})
	}
}

func TestRetriable(t *testing.T) {
	gr := schema.GroupResource{Group: "authentication.k8s.io", Resource: "tokenreviews"}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"the API server is unreachable", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"the API server failed", apierrors.NewInternalError(errors.New("boom")), true},
		{"the API server is overloaded", apierrors.NewTooManyRequests("slow down", 1), true},
		{"the API server is unavailable", apierrors.NewServiceUnavailable("starting"), true},
		{"a wrapped server failure", fmt.Errorf("creating: %w", apierrors.NewInternalError(errors.New("boom"))), true},
		{"the operator may not create reviews", apierrors.NewForbidden(gr, "", errors.New("no")), false},
		{"the request is invalid", apierrors.NewBadRequest("bad"), false},
		{"the request was cancelled", fmt.Errorf("post: %w", context.Canceled), false},
		{"the request timed out", fmt.Errorf("post: %w", context.DeadlineExceeded), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := retriable(c.err); got != c.want {
				t.Errorf("retriable(%v) = %v, want %v", c.err, got, c.want)
			}
		})
	}
}
