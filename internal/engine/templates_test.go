package engine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/keyferry/keyferry/internal/engine/render"
)

func TestTemplateErrorReason(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		reason string
		retry  bool
	}{
		{"over a budget", fmt.Errorf("executing template x: %w", &render.BudgetError{What: "output size", Limit: "1 MiB"}), ReasonTemplateBudgetExceeded, true},
		{"over the deadline", fmt.Errorf("executing templates: %w", &render.BudgetError{What: "execution time", Limit: "2s"}), ReasonTemplateBudgetExceeded, true},
		{"any other failure", errors.New("executing template x: line 1, column 3: calling eq failed"), ReasonTemplateFailed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := templateError(tt.err)
			if e.Reason != tt.reason || (e.RetryAfter > 0) != tt.retry {
				t.Fatalf("reason %s, retry after %v; want %s, retry %v", e.Reason, e.RetryAfter, tt.reason, tt.retry)
			}
			if e.Error() != tt.err.Error() {
				t.Fatalf("message changed: %q", e.Error())
			}
		})
	}
}
