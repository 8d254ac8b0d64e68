package maintb

import (
	"os"
	"strings"
	"testing"
)

func TestDoTurnsFatalfIntoAnErrorAndCleanupsRunLastFirst(t *testing.T) {
	tb := &TB{}
	var order []string
	var dir string
	err := tb.Do(func() {
		tb.Cleanup(func() { order = append(order, "first") })
		dir = tb.TempDir()
		tb.Cleanup(func() { order = append(order, "second") })
		tb.Fatalf("server %s did not start", "x")
		order = append(order, "after Fatalf")
	})
	if err == nil || err.Error() != "server x did not start" {
		t.Fatalf("Do = %v, want the Fatalf message", err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("TempDir is gone before RunCleanups: %v", err)
	}
	tb.RunCleanups()
	if strings.Join(order, ",") != "second,first" {
		t.Fatalf("order %v, want second,first and nothing after Fatalf", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("TempDir still there after RunCleanups: %v", err)
	}
	if err := tb.Do(func() {}); err != nil {
		t.Fatalf("Do of a helper that succeeds = %v", err)
	}
}

func TestDoLetsOtherPanicsThrough(t *testing.T) {
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	_ = (&TB{}).Do(func() { panic("boom") })
	t.Fatal("Do swallowed a panic that is not a Fatalf")
}
