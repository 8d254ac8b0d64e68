package restart

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// maxNameListEntries and maxNameListEntryLen bound what ParseNameList
// compiles, so that one annotation cannot make the controller compile
// thousands of expressions on every change. Longer lists or entries are
// reported and ignored.
const (
	maxNameListEntries  = 100
	maxNameListEntryLen = 253
)

// NameList is a parsed AnnotationSecretReload value: Secret names, each an
// anchored regular expression.
type NameList []*regexp.Regexp

// ParseNameList parses a comma-separated list of Secret names as Reloader
// does: each entry is trimmed and is a regular expression that must match
// the whole name ("app-.*" matches every Secret starting with "app-"; a
// plain name matches itself). Empty entries are skipped. An entry that does
// not compile is reported in the error and left out; the others still count.
func ParseNameList(v string) (NameList, error) {
	var list NameList
	var errs []error
	for i, entry := range strings.Split(v, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if i >= maxNameListEntries {
			errs = append(errs, fmt.Errorf("more than %d entries; the rest are ignored", maxNameListEntries))
			break
		}
		if len(entry) > maxNameListEntryLen {
			errs = append(errs, fmt.Errorf("entry %d is longer than %d characters", i+1, maxNameListEntryLen))
			continue
		}
		re, err := regexp.Compile("^(?:" + entry + ")$")
		if err != nil {
			errs = append(errs, fmt.Errorf("entry %d %q is not a regular expression: %w", i+1, entry, unwrapSyntax(err)))
			continue
		}
		list = append(list, re)
	}
	return list, errors.Join(errs...)
}

// unwrapSyntax drops the expression regexp repeats in its error (the
// caller already quotes the entry).
func unwrapSyntax(err error) error {
	var se *syntax.Error
	if errors.As(err, &se) {
		return errors.New(se.Code.String())
	}
	return err
}

// Matches reports whether name matches an entry.
func (l NameList) Matches(name string) bool {
	for _, re := range l {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

// ExactListContains reports whether the comma-separated list v names name
// exactly (entries trimmed), as Reloader reads its exclude annotations.
func ExactListContains(v, name string) bool {
	for entry := range strings.SplitSeq(v, ",") {
		if entry = strings.TrimSpace(entry); entry != "" && entry == name {
			return true
		}
	}
	return false
}
