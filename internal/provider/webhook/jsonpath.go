package webhook

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// This file holds a small JSONPath evaluator: the subset of JSONPath that
// ESO's webhook manifests use, evaluated over gjson values so the selected
// bytes are exactly those of the response.
//
// Supported:
//
//	$                   the whole document ("$" may be left out: "data.value")
//	.name  ['name']     a member of an object (quote names holding '.' or '[')
//	[n]  [-n]           an element of an array, counted from the end when negative
//	.*  [*]             every member or element
//	..name  ..*         recursive descent
//	[?(@.a.b == 'x')]   elements whose sub-path compares to a literal with
//	                    ==, !=, <, <=, >, >= (strings, numbers, true, false,
//	                    null), or [?(@.a)] for elements that have a sub-path
//
// Unions ([a,b]), slices ([1:3]), script expressions and functions are not
// supported and are refused when the path is parsed.

type stepKind int

const (
	stepChild stepKind = iota
	stepIndex
	stepWildcard
	stepDescend
	stepFilter
)

type step struct {
	kind  stepKind
	name  string // stepChild, stepDescend (empty with all)
	index int    // stepIndex
	all   bool   // stepDescend: ..*
	cond  *filterCond
}

type filterCond struct {
	path []step // child and index steps from @
	op   string // empty: the sub-path exists
	lit  literal
}

type literalKind int

const (
	litString literalKind = iota
	litNumber
	litBool
	litNull
)

type literal struct {
	kind literalKind
	str  string
	num  float64
	b    bool
}

// jsonPath is a parsed path.
type jsonPath struct {
	src   string
	steps []step
}

// parseJSONPath parses the JSONPath subset described above. A trailing "."
// is ignored, so that a template such as "$.data.{{ .remoteRef.property }}"
// selects "$.data" when the property is empty.
func parseJSONPath(src string) (*jsonPath, error) {
	s := strings.TrimSpace(src)
	if strings.HasSuffix(s, ".") && !strings.HasSuffix(s, "..") {
		s = strings.TrimSuffix(s, ".")
	}
	if s == "" {
		return nil, fmt.Errorf("jsonPath %q is empty", src)
	}
	switch {
	case s[0] == '$':
		s = s[1:]
	case s[0] == '.' || s[0] == '[':
	default:
		s = "." + s
	}
	p := &parser{src: src, s: s}
	steps, err := p.steps(false)
	if err != nil {
		return nil, err
	}
	return &jsonPath{src: src, steps: steps}, nil
}

type parser struct {
	src string
	s   string
	i   int
}

func (p *parser) errorf(format string, args ...any) error {
	return fmt.Errorf("jsonPath %q: %s", p.src, fmt.Sprintf(format, args...))
}

func (p *parser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *parser) skipSpaces() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// steps parses steps until the end of the input or, inside a filter, until
// a space, an operator or the closing parenthesis.
func (p *parser) steps(inFilter bool) ([]step, error) {
	var out []step
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '.':
			p.i++
			if p.peek() == '.' {
				if inFilter {
					return nil, p.errorf("recursive descent is not supported inside a filter")
				}
				p.i++
				if p.peek() == '*' {
					p.i++
					out = append(out, step{kind: stepDescend, all: true})
					continue
				}
				name := p.name()
				if name == "" {
					return nil, p.errorf("a name must follow '..' at offset %d", p.i)
				}
				out = append(out, step{kind: stepDescend, name: name})
				continue
			}
			if p.peek() == '*' {
				if inFilter {
					return nil, p.errorf("wildcards are not supported inside a filter")
				}
				p.i++
				out = append(out, step{kind: stepWildcard})
				continue
			}
			name := p.name()
			if name == "" {
				return nil, p.errorf("a name must follow '.' at offset %d", p.i)
			}
			out = append(out, step{kind: stepChild, name: name})
		case c == '[':
			st, err := p.bracket(inFilter)
			if err != nil {
				return nil, err
			}
			out = append(out, st)
		case inFilter:
			return out, nil
		default:
			return nil, p.errorf("unexpected %q at offset %d", c, p.i)
		}
	}
	return out, nil
}

// name reads a member name in dot notation.
func (p *parser) name() string {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(".[]()=!<>&| '\"", rune(p.s[p.i])) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *parser) bracket(inFilter bool) (step, error) {
	p.i++ // '['
	p.skipSpaces()
	var st step
	switch c := p.peek(); {
	case c == '*':
		if inFilter {
			return st, p.errorf("wildcards are not supported inside a filter")
		}
		p.i++
		st = step{kind: stepWildcard}
	case c == '\'' || c == '"':
		name, err := p.quoted()
		if err != nil {
			return st, err
		}
		st = step{kind: stepChild, name: name}
	case c == '?':
		if inFilter {
			return st, p.errorf("nested filters are not supported")
		}
		cond, err := p.filter()
		if err != nil {
			return st, err
		}
		st = step{kind: stepFilter, cond: cond}
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.i
		p.i++
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
		n, err := strconv.Atoi(p.s[start:p.i])
		if err != nil {
			return st, p.errorf("bad index %q", p.s[start:p.i])
		}
		st = step{kind: stepIndex, index: n}
	default:
		return st, p.errorf("unsupported selector at offset %d", p.i)
	}
	p.skipSpaces()
	switch p.peek() {
	case ']':
		p.i++
		return st, nil
	case ',':
		return st, p.errorf("unions ([a,b]) are not supported")
	case ':':
		return st, p.errorf("slices ([a:b]) are not supported")
	default:
		return st, p.errorf("expected ']' at offset %d", p.i)
	}
}

// quoted reads a single- or double-quoted string; a backslash takes the
// next character literally.
func (p *parser) quoted() (string, error) {
	q := p.s[p.i]
	p.i++
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '\\' && p.i+1 < len(p.s):
			b.WriteByte(p.s[p.i+1])
			p.i += 2
		case c == q:
			p.i++
			return b.String(), nil
		default:
			b.WriteByte(c)
			p.i++
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *parser) filter() (*filterCond, error) {
	p.i++ // '?'
	p.skipSpaces()
	if p.peek() != '(' {
		return nil, p.errorf("expected '(' after '?'")
	}
	p.i++
	p.skipSpaces()
	if p.peek() != '@' {
		return nil, p.errorf("a filter must start with '@'")
	}
	p.i++
	path, err := p.steps(true)
	if err != nil {
		return nil, err
	}
	cond := &filterCond{path: path}
	p.skipSpaces()
	for _, op := range []string{"==", "!=", "<=", ">=", "<", ">"} {
		if strings.HasPrefix(p.s[p.i:], op) {
			cond.op = op
			p.i += len(op)
			break
		}
	}
	if cond.op != "" {
		p.skipSpaces()
		if cond.lit, err = p.literal(); err != nil {
			return nil, err
		}
		if (cond.lit.kind == litBool || cond.lit.kind == litNull) && cond.op != "==" && cond.op != "!=" {
			return nil, p.errorf("%s cannot compare with true, false or null", cond.op)
		}
	}
	p.skipSpaces()
	if p.peek() != ')' {
		return nil, p.errorf("expected ')' at offset %d (only one comparison per filter is supported)", p.i)
	}
	p.i++
	return cond, nil
}

func (p *parser) literal() (literal, error) {
	if c := p.peek(); c == '\'' || c == '"' {
		s, err := p.quoted()
		return literal{kind: litString, str: s}, err
	}
	start := p.i
	for p.i < len(p.s) && p.s[p.i] != ' ' && p.s[p.i] != ')' {
		p.i++
	}
	tok := p.s[start:p.i]
	switch tok {
	case "true", "false":
		return literal{kind: litBool, b: tok == "true"}, nil
	case "null":
		return literal{kind: litNull}, nil
	}
	n, err := strconv.ParseFloat(tok, 64)
	if err != nil {
		return literal{}, p.errorf("bad literal %q: use a quoted string, a number, true, false or null", tok)
	}
	return literal{kind: litNumber, num: n}, nil
}

// eval returns the nodes the path selects in doc, in document order.
func (jp *jsonPath) eval(doc gjson.Result) []gjson.Result {
	nodes := []gjson.Result{doc}
	for _, st := range jp.steps {
		var next []gjson.Result
		for _, n := range nodes {
			next = applyStep(next, n, st)
		}
		nodes = next
		if len(nodes) == 0 {
			break
		}
	}
	return nodes
}

func applyStep(out []gjson.Result, n gjson.Result, st step) []gjson.Result {
	switch st.kind {
	case stepChild:
		if v := member(n, st.name); v.Exists() {
			out = append(out, v)
		}
	case stepIndex:
		if v := element(n, st.index); v.Exists() {
			out = append(out, v)
		}
	case stepWildcard:
		if n.IsObject() || n.IsArray() {
			n.ForEach(func(_, v gjson.Result) bool {
				out = append(out, v)
				return true
			})
		}
	case stepDescend:
		out = descend(out, n, st)
	case stepFilter:
		if n.IsObject() || n.IsArray() {
			n.ForEach(func(_, v gjson.Result) bool {
				if st.cond.match(v) {
					out = append(out, v)
				}
				return true
			})
		}
	}
	return out
}

func member(n gjson.Result, name string) gjson.Result {
	var found gjson.Result
	if !n.IsObject() {
		return found
	}
	n.ForEach(func(k, v gjson.Result) bool {
		if k.String() == name {
			found = v
			return false
		}
		return true
	})
	return found
}

func element(n gjson.Result, i int) gjson.Result {
	if !n.IsArray() {
		return gjson.Result{}
	}
	arr := n.Array()
	if i < 0 {
		i += len(arr)
	}
	if i < 0 || i >= len(arr) {
		return gjson.Result{}
	}
	return arr[i]
}

func descend(out []gjson.Result, n gjson.Result, st step) []gjson.Result {
	switch {
	case n.IsObject():
		n.ForEach(func(k, v gjson.Result) bool {
			if st.all || k.String() == st.name {
				out = append(out, v)
			}
			out = descend(out, v, st)
			return true
		})
	case n.IsArray():
		n.ForEach(func(_, v gjson.Result) bool {
			if st.all {
				out = append(out, v)
			}
			out = descend(out, v, st)
			return true
		})
	}
	return out
}

func (c *filterCond) match(n gjson.Result) bool {
	v := n
	for _, st := range c.path {
		switch st.kind {
		case stepChild:
			v = member(v, st.name)
		case stepIndex:
			v = element(v, st.index)
		}
		if !v.Exists() {
			return false
		}
	}
	if c.op == "" {
		return true
	}
	switch c.lit.kind {
	case litString:
		if v.Type != gjson.String {
			return c.op == "!="
		}
		return compare(c.op, strings.Compare(v.Str, c.lit.str))
	case litNumber:
		if v.Type != gjson.Number {
			return c.op == "!="
		}
		switch {
		case v.Num < c.lit.num:
			return compare(c.op, -1)
		case v.Num > c.lit.num:
			return compare(c.op, 1)
		default:
			return compare(c.op, 0)
		}
	case litBool:
		eq := (v.Type == gjson.True && c.lit.b) || (v.Type == gjson.False && !c.lit.b)
		return eq == (c.op == "==")
	default: // null
		return (v.Type == gjson.Null) == (c.op == "==")
	}
}

func compare(op string, cmp int) bool {
	switch op {
	case "==":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case "<=":
		return cmp <= 0
	case ">":
		return cmp > 0
	default:
		return cmp >= 0
	}
}

// selectValue turns what a path selected into the value's bytes the way
// ESO's webhook provider does: the first match is taken; an array gives its
// first element (ESO keeps this for compatibility); a string gives its
// contents; a number its JSON text; true and false their names; null an
// empty value; an object its JSON. ok is false when nothing was selected (or
// the selection is an empty array).
func selectValue(nodes []gjson.Result) (data []byte, ok bool) {
	if len(nodes) == 0 {
		return nil, false
	}
	v := nodes[0]
	for v.IsArray() {
		arr := v.Array()
		if len(arr) == 0 {
			return nil, false
		}
		v = arr[0]
	}
	switch v.Type {
	case gjson.String:
		return []byte(v.Str), true
	case gjson.Number:
		return []byte(v.Raw), true
	case gjson.True:
		return []byte("true"), true
	case gjson.False:
		return []byte("false"), true
	case gjson.Null:
		return []byte{}, true
	default:
		return []byte(v.Raw), true
	}
}
