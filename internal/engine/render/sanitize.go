package render

import (
	"errors"
	"regexp"
	"strings"
)

// execError matches a text/template execution error, "template: NAME:LINE:COL:
// executing "NAME" at <NODE>: DESCRIPTION", where NODE is template text and
// DESCRIPTION may quote a value.
var execError = regexp.MustCompile(`(?s)^template: (.*?):(\d+):(\d+): executing ".*?" at <.*?>: (.*)$`)

// calledFunc matches the description of a failed call, which names the
// function (an identifier of the template, never a value).
var calledFunc = regexp.MustCompile(`^error calling ([A-Za-z_][A-Za-z0-9_]*): `)

// missingKey matches the description of a missing field; field names are
// identifiers of the template (".password"), never values.
var missingKey = regexp.MustCompile(`^(?:map has no entry for key|nil data; no entry for key) "([A-Za-z_][A-Za-z0-9_]*)"$`)

// descriptions maps a fragment of text/template's execution errors to the
// fixed description users see, most specific first. The errors themselves
// may quote the value ("range can't iterate over <value>"), so none of
// their text is kept.
var descriptions = []struct{ fragment, description string }{
	{"range can't iterate over", "range over a value that cannot be iterated"},
	{"iterate over more than one variable", "range declares more variables than the value provides"},
	{"range over send-only channel", "range over a value that cannot be iterated"},
	{"if/with can't use", "if or with on a value that cannot be tested"},
	{"wrong number of args", "wrong number of arguments"},
	{"wrong type for value", "an argument has the wrong type"},
	{"invalid value; expected", "an argument has the wrong type"},
	{"cannot assign nil", "an argument is nil"},
	{"dereference of nil pointer", "an argument is nil"},
	{"nil pointer evaluating", "a field of a nil value was read"},
	{"indirection through explicit nil", "a field of a nil value was read"},
	{"can't evaluate field", "a field was read from a value that has no fields"},
	{"is an unexported field", "a field was read from a value that has no fields"},
	{"has arguments but cannot be invoked", "arguments were given to a field"},
	{"is not a method but has arguments", "arguments were given to a field"},
	{"can't give argument to non-function", "arguments were given to a value that is not a function"},
	{"is not a defined function", "a function is not defined"},
	{"can't evaluate command", "a command cannot be evaluated"},
	{"overflows int", "a number is too large"},
	{"undefined variable", "a variable is not defined"},
	{"exceeded maximum template depth", "templates call each other too deeply"},
	{"is an incomplete or empty template", "a template is empty"},
	{"not defined", "a template is not defined"},
	{"can't print", "a value cannot be printed"},
	{"can't handle", "an argument has the wrong type"},
	{"expected bool", "an argument has the wrong type"},
	{"expected string", "an argument has the wrong type"},
	{"expected integer", "an argument has the wrong type"},
	{"expected unsigned integer", "an argument has the wrong type"},
	{"expected float", "an argument has the wrong type"},
	{"expected complex", "an argument has the wrong type"},
}

// sanitize reduces a template execution error to where it happened and a
// fixed description. source is the name the template was parsed under; a
// location in another (defined) template keeps that template's name.
func sanitize(source string, err error) string {
	loc := location(source, err)
	desc := err.Error()
	if m := execError.FindStringSubmatch(desc); m != nil {
		desc = m[4]
	}
	if m := calledFunc.FindStringSubmatch(desc); m != nil {
		var se safeError
		if errors.As(err, &se) {
			return loc + "calling " + m[1] + " failed: " + se.Error()
		}
		return loc + "calling " + m[1] + " failed"
	}
	if m := missingKey.FindStringSubmatch(desc); m != nil {
		return loc + "the data has no key " + m[1]
	}
	for _, d := range descriptions {
		if strings.Contains(desc, d.fragment) {
			return loc + d.description
		}
	}
	return loc + "execution failed"
}

// location returns "line L, column C: " of an execution error, naming the
// template when it is a defined one, or "" when the error has none.
func location(source string, err error) string {
	m := execError.FindStringSubmatch(err.Error())
	if m == nil || m[1] == stepFunc || m[1] == enterFunc {
		return ""
	}
	loc := "line " + m[2] + ", column " + m[3] + ": "
	if m[1] != source && validName(m[1]) {
		loc = "in " + `"` + m[1] + `" ` + loc
	}
	return loc
}

// safeError is an error of keyferry's own template functions: fixed text
// that never holds a value, so it is shown as it is.
type safeError string

func (e safeError) Error() string { return string(e) }

// validName says whether a defined template's name is short printable text
// worth showing; names come from the template source.
func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '"' {
			return false
		}
	}
	return true
}
