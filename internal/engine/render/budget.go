package render

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"text/template"
	"text/template/parse"
)

// maxDepth is how deeply lists and maps a template function returns may
// nest. Printing and JSON encoding recurse once per level, so an unbounded
// depth could exhaust the stack, which no recover catches.
const maxDepth = 100

// meter is the budget of one Render call. One goroutine executes a render,
// so it needs no locking.
type meter struct {
	ctx    context.Context
	limits Limits
	steps  int
	// calls counts template invocations: the templates of the render
	// and every {{ template }} action.
	calls int
	// written is the output of every template of the render so far.
	written int
	// alloc is the total size of every value a function returned.
	alloc  int
	costly int
}

func newMeter(ctx context.Context, l Limits) *meter {
	return &meter{ctx: ctx, limits: l}
}

func over(what string, limit any) error {
	return &BudgetError{What: what, Limit: fmt.Sprint(limit)}
}

func sizeLimit(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// step counts one range iteration, template invocation or function call
// and fails once the render is over its step budget or its deadline.
func (m *meter) step() error {
	m.steps++
	if m.steps > m.limits.MaxSteps {
		return over("loop iterations and calls", m.limits.MaxSteps)
	}
	return m.alive()
}

// enter counts one template invocation. text/template allows 100,000
// nested invocations, whose stacks alone take hundreds of MiB; a render
// may make maxTemplateCalls in all.
func (m *meter) enter() error {
	m.calls++
	if m.calls > maxTemplateCalls {
		return over("template invocations", maxTemplateCalls)
	}
	return m.step()
}

// maxTemplateCalls bounds the template invocations of one render, and so
// the depth of recursive templates.
const maxTemplateCalls = 10_000

// alive fails once the render's context is done (its deadline passed).
func (m *meter) alive() error {
	select {
	case <-m.ctx.Done():
		if cause := context.Cause(m.ctx); cause != nil {
			return cause
		}
		return m.ctx.Err()
	default:
		return nil
	}
}

// costlyCall counts one key generation or password hash.
func (m *meter) costlyCall() error { return m.costlyCalls(1) }

// costlyCalls counts a call that costs n key generations.
func (m *meter) costlyCalls(n int) error {
	m.costly += n
	if m.costly > m.limits.MaxCostly {
		return over("key generations and password hashes", m.limits.MaxCostly)
	}
	return m.alive()
}

// checkSize refuses to build a string of n bytes.
func (m *meter) checkSize(n int) error {
	if n < 0 || n > m.limits.MaxValue {
		return over("value size", sizeLimit(m.limits.MaxValue))
	}
	return nil
}

// account adds a returned value's size to the render's allocation and
// refuses values that are too large or nest too deeply.
func (m *meter) account(v reflect.Value) error {
	n, ok := deepSize(v, m.limits.MaxValue, 1)
	if !ok {
		return over("value size or nesting", fmt.Sprintf("%s or %d levels", sizeLimit(m.limits.MaxValue), maxDepth))
	}
	m.alloc += n
	if m.alloc > m.limits.MaxAlloc {
		return over("total size of computed values", sizeLimit(m.limits.MaxAlloc))
	}
	return nil
}

// deepSize estimates the memory a value holds: the bytes of its strings
// (at least one each), one per list, map and element, and scalar per
// number or boolean. It walks at most limit+1 units and maxDepth levels
// (cycles end there too) and reports false beyond either.
func deepSize(v reflect.Value, limit, scalar int) (int, bool) {
	type item struct {
		v     reflect.Value
		depth int
	}
	stack := []item{{v, 0}}
	n := 0
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if it.depth > maxDepth {
			return n, false
		}
		v := it.v
		n++
		if n > limit {
			return n, false
		}
		if !v.IsValid() {
			continue
		}
		switch v.Kind() {
		case reflect.String:
			// The unit counted above is the string's first byte.
			n += max(v.Len()-1, 0)
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
			n += scalar - 1
		case reflect.Interface, reflect.Pointer:
			if !v.IsNil() {
				stack = append(stack, item{v.Elem(), it.depth + 1})
			}
		case reflect.Slice, reflect.Array:
			if v.Type().Elem().Kind() == reflect.Uint8 {
				n += max(v.Len()-1, 0)
				break
			}
			if v.Len() > limit-n {
				return n, false
			}
			for i := 0; i < v.Len(); i++ {
				stack = append(stack, item{v.Index(i), it.depth + 1})
			}
		case reflect.Map:
			if v.Len() > limit-n {
				return n, false
			}
			iter := v.MapRange()
			for iter.Next() {
				stack = append(stack, item{iter.Key(), it.depth + 1}, item{iter.Value(), it.depth + 1})
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				stack = append(stack, item{v.Field(i), it.depth + 1})
			}
		}
		if n > limit {
			return n, false
		}
	}
	return n, true
}

// wrap returns fn with the same signature, metered: each call is a step,
// and what it returns is accounted. Budget errors are raised by panicking
// with the error, which text/template turns into an execution error that
// still matches ErrBudgetExceeded.
func (m *meter) wrap(fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		if err := m.step(); err != nil {
			panic(err)
		}
		var out []reflect.Value
		if t.IsVariadic() {
			out = v.CallSlice(args)
		} else {
			out = v.Call(args)
		}
		if len(out) == 2 && !out[1].IsNil() {
			return out
		}
		if err := m.account(out[0]); err != nil {
			panic(err)
		}
		return out
	}).Interface()
}

// limitedWriter collects one template's output. It fails the write that
// would take the render's output over MaxOutput, and every write once the
// deadline has passed, which stops execution at the next output.
type limitedWriter struct {
	m   *meter
	buf bytes.Buffer
}

func (w *limitedWriter) Write(p []byte) (int, error) {
	if err := w.m.alive(); err != nil {
		return 0, err
	}
	if len(p) > w.m.limits.MaxOutput-w.m.written {
		return 0, over("output size", sizeLimit(w.m.limits.MaxOutput))
	}
	w.m.written += len(p)
	return w.buf.Write(p)
}

// instrument inserts a call of enterFunc at the start of every template of
// t and of stepFunc at the start of every range body, and returns the names
// of every function the templates may call, so only those get metered
// wrappers.
func instrument(t *template.Template, enter, step *parse.ActionNode) map[string]bool {
	names := map[string]bool{}
	for _, tt := range t.Templates() {
		if tt.Tree == nil || tt.Tree.Root == nil {
			continue
		}
		walkNodes(tt.Tree.Root, step, names)
		tt.Tree.Root.Nodes = append([]parse.Node{enter}, tt.Tree.Root.Nodes...)
	}
	return names
}

func walkNodes(n parse.Node, step *parse.ActionNode, names map[string]bool) {
	switch n := n.(type) {
	case *parse.ListNode:
		if n == nil {
			return
		}
		for _, c := range n.Nodes {
			walkNodes(c, step, names)
		}
	case *parse.ActionNode:
		walkNodes(n.Pipe, step, names)
	case *parse.PipeNode:
		if n == nil {
			return
		}
		for _, c := range n.Cmds {
			walkNodes(c, step, names)
		}
	case *parse.CommandNode:
		for _, a := range n.Args {
			walkNodes(a, step, names)
		}
	case *parse.IdentifierNode:
		names[n.Ident] = true
	case *parse.ChainNode:
		walkNodes(n.Node, step, names)
	case *parse.IfNode:
		walkBranch(&n.BranchNode, step, names)
	case *parse.WithNode:
		walkBranch(&n.BranchNode, step, names)
	case *parse.RangeNode:
		walkBranch(&n.BranchNode, step, names)
		if n.List == nil {
			n.List = &parse.ListNode{NodeType: parse.NodeList, Pos: n.Pos}
		}
		n.List.Nodes = append([]parse.Node{step}, n.List.Nodes...)
	case *parse.TemplateNode:
		walkNodes(n.Pipe, step, names)
	}
}

func walkBranch(b *parse.BranchNode, step *parse.ActionNode, names map[string]bool) {
	walkNodes(b.Pipe, step, names)
	if b.List != nil {
		walkNodes(b.List, step, names)
	}
	if b.ElseList != nil {
		walkNodes(b.ElseList, step, names)
	}
}

// isBudget reports whether err went over a limit or the deadline.
func isBudget(err error) (*BudgetError, bool) {
	var be *BudgetError
	if errors.As(err, &be) {
		return be, true
	}
	return nil, false
}
