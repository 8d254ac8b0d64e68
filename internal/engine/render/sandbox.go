package render

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"text/template"
	"text/template/parse"
	"time"
)

// Limits bound what one Render call (every template of one ExternalSecret)
// may consume. The zero value of a field means its default.
type Limits struct {
	// MaxOutput is the total size of everything the templates write
	// (default 1 MiB, the Secret size limit). It is enforced while
	// writing: execution stops at the first byte over.
	MaxOutput int
	// MaxValue is the largest string a template function may return, and
	// roughly the largest list or map (default 1 MiB).
	MaxValue int
	// MaxAlloc is the total size of every value the template functions
	// return during one render (default 64 MiB); it bounds memory when a
	// template grows a value in a loop.
	MaxAlloc int
	// MaxSteps is the number of range iterations, template invocations and
	// function calls one render may make (default 1,000,000).
	MaxSteps int
	// MaxList is the longest list until, untilStep and seq may produce
	// (default 10,000).
	MaxList int
	// MaxCostly is how many key generations and password hashes (genCA,
	// genPrivateKey, bcrypt, htpasswd, derivePassword...) one render may
	// make (default 4).
	MaxCostly int
	// Timeout is the wall-clock budget of one render, not counting the
	// wait for a free slot (default 2s).
	Timeout time.Duration
	// Concurrency is how many renders run at once across the operator
	// (default the number of CPUs, at least 2).
	Concurrency int
}

// DefaultLimits returns the limits used when a field is zero.
func DefaultLimits() Limits {
	return Limits{
		MaxOutput:   1 << 20,
		MaxValue:    1 << 20,
		MaxAlloc:    64 << 20,
		MaxSteps:    1_000_000,
		MaxList:     10_000,
		MaxCostly:   4,
		Timeout:     2 * time.Second,
		Concurrency: max(2, runtime.GOMAXPROCS(0)),
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxOutput <= 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.MaxValue <= 0 {
		l.MaxValue = d.MaxValue
	}
	if l.MaxAlloc <= 0 {
		l.MaxAlloc = d.MaxAlloc
	}
	if l.MaxSteps <= 0 {
		l.MaxSteps = d.MaxSteps
	}
	if l.MaxList <= 0 {
		l.MaxList = d.MaxList
	}
	if l.MaxCostly <= 0 {
		l.MaxCostly = d.MaxCostly
	}
	if l.Timeout <= 0 {
		l.Timeout = d.Timeout
	}
	if l.Concurrency <= 0 {
		l.Concurrency = d.Concurrency
	}
	return l
}

// ErrBudgetExceeded is matched (errors.Is) by every error of a render that
// went over one of its Limits.
var ErrBudgetExceeded = errors.New("template budget exceeded")

// BudgetError says which limit a render went over. Its message is fixed
// text and numbers from the Limits, never a value.
type BudgetError struct {
	// What names the limit, e.g. "output size".
	What string
	// Limit is the limit's value, human readable.
	Limit string
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("template budget exceeded: %s over the limit of %s", e.What, e.Limit)
}

// Is makes errors.Is(err, ErrBudgetExceeded) true.
func (e *BudgetError) Is(target error) bool { return target == ErrBudgetExceeded }

// Sandbox renders templates within Limits on a bounded pool of goroutines.
// Build one with NewSandbox and share it: its pool is what keeps one
// tenant's template from stalling the others. It is safe for concurrent use.
type Sandbox struct {
	limits Limits
	slots  chan struct{}
	// raw holds the unbounded originals; funcs is the function map
	// templates are parsed with. Execution replaces every function a
	// template uses with its metered version.
	raw, funcs template.FuncMap
	// step and enter are the parsed {{ __kf_step }} and {{ __kf_enter }}
	// actions inserted into every range body and every template, so a
	// loop or a recursion that writes nothing still reaches code that
	// checks the budget.
	step, enter *parse.ActionNode
}

// stepFunc and enterFunc are the functions the sandbox calls once per
// range iteration and per template invocation.
const (
	stepFunc  = "__kf_step"
	enterFunc = "__kf_enter"
)

// NewSandbox returns a Sandbox with the given limits (zero fields take
// their defaults).
func NewSandbox(l Limits) *Sandbox {
	l = l.withDefaults()
	raw := rawFuncs()
	s := &Sandbox{limits: l, slots: make(chan struct{}, l.Concurrency), raw: raw, funcs: parseFuncs(raw)}
	s.step, s.enter = action(stepFunc), action(enterFunc)
	return s
}

// Limits returns the sandbox's limits with defaults applied.
func (s *Sandbox) Limits() Limits { return s.limits }

// Render executes items over data (each value available as .KEY, a string)
// within the sandbox's limits. An error that went over a limit matches
// ErrBudgetExceeded.
func (s *Sandbox) Render(ctx context.Context, items []Item, data map[string][]byte) (Output, error) {
	// Wait for a slot; the wait does not count against the deadline.
	select {
	case s.slots <- struct{}{}:
	case <-ctx.Done():
		return Output{}, fmt.Errorf("waiting to render templates: %w", context.Cause(ctx))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, s.limits.Timeout, &BudgetError{What: "execution time", Limit: s.limits.Timeout.String()})
	defer cancel()
	type result struct {
		out Output
		err error
	}
	done := make(chan result, 1)
	go func() {
		// The slot is released only when execution really ends, so a
		// template that overran its deadline in a call that cannot be
		// interrupted still counts against the pool.
		defer func() { <-s.slots }()
		var r result
		defer func() {
			if p := recover(); p != nil {
				r = result{err: errors.New("template execution failed unexpectedly")}
			}
			done <- r
		}()
		r.out, r.err = s.render(ctx, items, data)
	}()
	select {
	case r := <-done:
		return r.out, r.err
	case <-ctx.Done():
		select {
		case r := <-done:
			// Finished as the deadline passed: its own result says more.
			return r.out, r.err
		default:
		}
		return Output{}, fmt.Errorf("executing templates: %w", context.Cause(ctx))
	}
}

// Validate parses a template without executing it.
func (s *Sandbox) Validate(name, text string) error {
	_, err := s.parse(name, text)
	return err
}

// parse parses text as text/template's Parse does, but checks function
// names against the sandbox's map in place: handing 200 sprig functions to
// Template.Funcs for every template was most of a render's cost. Execution
// then binds only the functions the template uses.
func (s *Sandbox) parse(name, text string) (*template.Template, error) {
	trees, err := parse.Parse(name, text, "", "", s.funcs, builtinNames)
	if err != nil {
		return nil, fmt.Errorf("parsing template %s: %w", name, err)
	}
	t := template.New(name).Option("missingkey=error")
	for n, tree := range trees {
		if _, err := t.AddParseTree(n, tree); err != nil {
			return nil, fmt.Errorf("parsing template %s: %w", name, err)
		}
	}
	return t, nil
}

// builtinNames are text/template's builtin functions, which parse must
// know by name.
var builtinNames = map[string]any{
	"and": true, "call": true, "html": true, "index": true, "slice": true, "js": true, "len": true,
	"not": true, "or": true, "print": true, "printf": true, "println": true, "urlquery": true,
	"eq": true, "ge": true, "gt": true, "le": true, "lt": true, "ne": true,
}

// action parses {{ name }}, a call of a function that prints nothing.
func action(name string) *parse.ActionNode {
	t := template.Must(template.New(name).Funcs(template.FuncMap{name: func() string { return "" }}).Parse("{{" + name + "}}"))
	return t.Tree.Root.Nodes[0].(*parse.ActionNode)
}
