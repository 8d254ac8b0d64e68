package engine

import (
	"errors"
	"time"

	"github.com/keyferry/keyferry/internal/engine/render"
)

// sandbox returns the engine's template sandbox, or one with the default
// limits and a pool of its own when the engine has none.
func (e *Engine) sandbox() *render.Sandbox {
	if e.Templates != nil {
		return e.Templates
	}
	return render.NewSandbox(render.Limits{})
}

// budgetRetry is how long a sync whose template went over its budget waits
// before it is tried again: the same template over the same values fails
// the same way, and each attempt may hold a render slot for the whole
// time budget, so it must not retry at the fast start of the usual
// exponential backoff.
const budgetRetry = time.Minute

// templateError gives a render error its reason: a template that went over
// its size, step or time budget is TemplateBudgetExceeded (retried after
// budgetRetry), any other failure TemplateFailed. The render package has
// already reduced the message to a location and a fixed description.
func templateError(err error) *Error {
	if errors.Is(err, render.ErrBudgetExceeded) {
		return &Error{Reason: ReasonTemplateBudgetExceeded, Err: err, RetryAfter: budgetRetry}
	}
	return &Error{Reason: ReasonTemplateFailed, Err: err}
}
