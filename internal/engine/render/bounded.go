package render

import (
	"context"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
)

// removed lists sprig functions that reach outside the process.
var removed = []string{"env", "expandenv", "getHostByName"}

// costly lists the sprig functions that generate keys or hash passwords:
// each takes from tens of milliseconds to seconds of CPU that cannot be
// interrupted, so a render may make only Limits.MaxCostly of them.
var costly = []string{
	"bcrypt", "htpasswd", "derivePassword", "buildCustomCert",
	"genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
	"genSignedCert", "genSignedCertWithKey",
}

// bounded builds, for one render's meter, the functions that replace
// sprig's (and text/template's print builtins) because their cost or the
// size of what they return grows with an argument.
var bounded = map[string]func(m *meter, sprigFn template.FuncMap) any{
	"repeat":                     boundedRepeat,
	"until":                      boundedUntil,
	"untilStep":                  boundedUntilStep,
	"seq":                        boundedSeq,
	"randAlphaNum":               boundedRand("randAlphaNum"),
	"randAlpha":                  boundedRand("randAlpha"),
	"randAscii":                  boundedRand("randAscii"),
	"randNumeric":                boundedRand("randNumeric"),
	"randBytes":                  boundedRandBytes,
	"indent":                     boundedIndent(""),
	"nindent":                    boundedIndent("\n"),
	"replace":                    boundedReplace,
	"wrapWith":                   boundedWrapWith,
	"join":                       boundedJoin,
	"regexReplaceAll":            boundedRegexReplace(false),
	"mustRegexReplaceAll":        boundedRegexReplace(false),
	"regexReplaceAllLiteral":     boundedRegexReplace(true),
	"mustRegexReplaceAllLiteral": boundedRegexReplace(true),
	"genPrivateKey":              boundedGenPrivateKey,
	"uniq":                       boundedUniq(false),
	"mustUniq":                   boundedUniq(true),
	"print":                      boundedPrint(fmt.Sprint),
	"println":                    boundedPrint(fmt.Sprintln),
	"printf":                     boundedPrintf,
}

// rawFuncs returns sprig's functions, minus the removed ones, plus ESO's
// helpers, unbounded: the originals the metered functions call.
func rawFuncs() template.FuncMap {
	fm := sprig.TxtFuncMap()
	for _, n := range removed {
		delete(fm, n)
	}
	fm["fromJson"] = fromJSON
	fm["toYaml"] = toYAML
	fm["fromYaml"] = fromYAML
	fm["filterPEM"] = filterPEM
	for name, fn := range certFuncs() {
		fm[name] = fn
	}
	// text/template's escaping builtins, under their own names, so they
	// are metered like every other function (their results can be six
	// times their input).
	fm["html"] = template.HTMLEscaper
	fm["js"] = template.JSEscaper
	fm["urlquery"] = template.URLQueryEscaper
	return fm
}

// parseFuncs returns the functions templates are parsed with: raw's, with
// the bounded and costly ones working under the default limits and a
// background context. A render replaces each function a template uses with
// its metered version.
func parseFuncs(raw template.FuncMap) template.FuncMap {
	m := newMeter(context.Background(), DefaultLimits())
	fm := make(template.FuncMap, len(raw)+len(bounded))
	for name := range raw {
		fm[name] = meteredFunc(m, name, raw)
	}
	for name := range bounded {
		fm[name] = meteredFunc(m, name, raw)
	}
	return fm
}

// meteredFunc returns the function name runs as under m: the bounded
// version where there is one, counted against MaxCostly where it is
// costly, and the original from raw otherwise.
func meteredFunc(m *meter, name string, raw template.FuncMap) any {
	if b, ok := bounded[name]; ok {
		return b(m, raw)
	}
	fn := raw[name]
	if k, ok := keyArgs[name]; ok {
		fn = keySizeChecked(fn, k.index, k.base64)
	}
	for _, c := range costly {
		if c == name {
			return m.countCostly(fn)
		}
	}
	return fn
}

// keyArgs names the argument that carries a caller's private key (PEM, or
// base64 of PEM) in the functions that sign with it.
var keyArgs = map[string]struct {
	index  int
	base64 bool
}{
	"genCAWithKey":             {2, false},
	"genSelfSignedCertWithKey": {4, false},
	"genSignedCertWithKey":     {5, false},
	"buildCustomCert":          {1, true},
}

// maxKeyDER bounds the DER size of a caller's private key: an 8192-bit
// RSA key is about 4.7 KiB. Signing with a larger RSA key takes seconds to
// minutes that cannot be interrupted.
const maxKeyDER = 6 << 10

var errKeyTooLarge error = safeError("private keys larger than 8192-bit RSA are not supported")

// keySizeChecked returns fn (whose last result is an error), refusing a
// private key in argument i larger than maxKeyDER before fn parses it.
func keySizeChecked(fn any, i int, b64 bool) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	if t.NumOut() != 2 || t.NumIn() <= i || t.In(i).Kind() != reflect.String {
		return fn
	}
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		if keyTooLarge(args[i].String(), b64) {
			errV := reflect.New(t.Out(1)).Elem()
			errV.Set(reflect.ValueOf(errKeyTooLarge))
			return []reflect.Value{reflect.Zero(t.Out(0)), errV}
		}
		return v.Call(args)
	}).Interface()
}

func keyTooLarge(s string, b64 bool) bool {
	data := []byte(s)
	if b64 {
		d, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return false // fn reports the bad encoding
		}
		data = d
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return false
		}
		if len(b.Bytes) > maxKeyDER {
			return true
		}
	}
}

// countCostly returns fn, with each call counted against MaxCostly.
func (m *meter) countCostly(fn any) any {
	v := reflect.ValueOf(fn)
	t := v.Type()
	return reflect.MakeFunc(t, func(args []reflect.Value) []reflect.Value {
		if err := m.costlyCall(); err != nil {
			panic(err)
		}
		if t.IsVariadic() {
			return v.CallSlice(args)
		}
		return v.Call(args)
	}).Interface()
}

var errNegativeCount error = safeError("count must not be negative")

func boundedRepeat(m *meter, _ template.FuncMap) any {
	return func(count int, str string) (string, error) {
		if count < 0 {
			return "", errNegativeCount
		}
		if len(str) > 0 && count > m.limits.MaxValue/len(str) {
			return "", over("value size", sizeLimit(m.limits.MaxValue))
		}
		return strings.Repeat(str, count), nil
	}
}

// rangeLen is how many values start, start+step, ... stop (exclusive) holds,
// computed without overflow; ok is false when it exceeds max.
func rangeLen(start, stop, step, max int) (int, bool) {
	var span, by uint64
	switch {
	case step > 0 && stop > start:
		span, by = uint64(stop)-uint64(start), uint64(step)
	case step < 0 && stop < start:
		span, by = uint64(start)-uint64(stop), uint64(-(step+1))+1
	default:
		return 0, true
	}
	n := span / by
	if span%by != 0 {
		n++
	}
	if n > uint64(max) {
		return 0, false
	}
	return int(n), true
}

func untilStep(m *meter, start, stop, step int) ([]int, error) {
	n, ok := rangeLen(start, stop, step, m.limits.MaxList)
	if !ok {
		return nil, over("list length", m.limits.MaxList)
	}
	v := make([]int, n)
	for i := range v {
		v[i] = start + i*step
	}
	return v, nil
}

func boundedUntil(m *meter, _ template.FuncMap) any {
	return func(count int) ([]int, error) {
		step := 1
		if count < 0 {
			step = -1
		}
		return untilStep(m, 0, count, step)
	}
}

func boundedUntilStep(m *meter, _ template.FuncMap) any {
	return func(start, stop, step int) ([]int, error) { return untilStep(m, start, stop, step) }
}

// boundedSeq behaves as sprig's seq (like the seq command: seq LAST, seq
// FIRST LAST, seq FIRST INCREMENT LAST) with at most MaxList numbers.
func boundedSeq(m *meter, _ template.FuncMap) any {
	return func(params ...int) (string, error) {
		var start, end, step int
		switch len(params) {
		case 1:
			start, end, step = 1, params[0], 1
			if end < start {
				step = -1
			}
			end += step
		case 2:
			start, end, step = params[0], params[1], 1
			if end < start {
				step = -1
			}
			end += step
		case 3:
			start, step, end = params[0], params[1], params[2]
			inc := 1
			if end < start {
				inc = -1
				if step > 0 {
					return "", nil
				}
			}
			end += inc
		default:
			return "", nil
		}
		v, err := untilStep(m, start, end, step)
		if err != nil {
			return "", err
		}
		parts := make([]string, len(v))
		for i, n := range v {
			parts[i] = strconv.Itoa(n)
		}
		return strings.Join(parts, " "), nil
	}
}

func boundedRand(name string) func(m *meter, sf template.FuncMap) any {
	return func(m *meter, sf template.FuncMap) any {
		orig := sf[name].(func(int) string)
		return func(count int) (string, error) {
			if count < 0 {
				return "", errNegativeCount
			}
			if err := m.checkSize(count); err != nil {
				return "", err
			}
			return orig(count), nil
		}
	}
}

func boundedRandBytes(m *meter, sf template.FuncMap) any {
	orig := sf["randBytes"].(func(int) (string, error))
	return func(count int) (string, error) {
		if count < 0 {
			return "", errNegativeCount
		}
		if err := m.checkSize(count / 3 * 4); err != nil {
			return "", err
		}
		return orig(count)
	}
}

func boundedIndent(prefix string) func(m *meter, _ template.FuncMap) any {
	return func(m *meter, _ template.FuncMap) any {
		return func(spaces int, v string) (string, error) {
			if spaces < 0 {
				return "", errNegativeCount
			}
			lines := strings.Count(v, "\n") + 1
			if spaces > m.limits.MaxValue/lines || m.checkSize(len(prefix)+len(v)+spaces*lines) != nil {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
			pad := strings.Repeat(" ", spaces)
			return prefix + pad + strings.ReplaceAll(v, "\n", "\n"+pad), nil
		}
	}
}

func boundedReplace(m *meter, _ template.FuncMap) any {
	return func(old, new, src string) (string, error) {
		if len(new) > len(old) {
			n := strings.Count(src, old)
			if n > 0 && len(new)-len(old) > (m.limits.MaxValue-len(src))/n {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
		}
		return strings.ReplaceAll(src, old, new), nil
	}
}

func boundedWrapWith(m *meter, sf template.FuncMap) any {
	orig := sf["wrapWith"].(func(int, string, string) string)
	return func(l int, sep, str string) (string, error) {
		breaks := len(str)
		if l > 0 {
			breaks = len(str)/l + 1
		}
		if len(sep) > 0 && breaks > (m.limits.MaxValue-len(str))/len(sep) {
			return "", over("value size", sizeLimit(m.limits.MaxValue))
		}
		return orig(l, sep, str), nil
	}
}

func boundedJoin(m *meter, sf template.FuncMap) any {
	orig := sf["join"].(func(string, any) string)
	return func(sep string, v any) (string, error) {
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Slice || rv.Kind() == reflect.Array {
			size, ok := deepSize(rv, m.limits.MaxValue, 1)
			if !ok || (len(sep) > 0 && rv.Len() > (m.limits.MaxValue-size)/len(sep)) {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
		}
		return orig(sep, v), nil
	}
}

var errBadRegexp error = safeError("invalid regular expression")

func boundedRegexReplace(literal bool) func(m *meter, _ template.FuncMap) any {
	return func(m *meter, _ template.FuncMap) any {
		return func(regex, s, repl string) (string, error) {
			r, err := regexp.Compile(regex)
			if err != nil {
				return "", errBadRegexp
			}
			// Each match becomes repl, where each $ may expand to at
			// most the match itself.
			matches := r.FindAllStringIndex(s, -1)
			refs := 0
			if !literal {
				refs = strings.Count(repl, "$")
			}
			est := len(s)
			for _, mt := range matches {
				est += len(repl) + refs*(mt[1]-mt[0])
				if est > m.limits.MaxValue {
					return "", over("value size", sizeLimit(m.limits.MaxValue))
				}
			}
			if literal {
				return r.ReplaceAllLiteralString(s, repl), nil
			}
			return r.ReplaceAllString(s, repl), nil
		}
	}
}

// rsa4096Cost is what one 4096-bit RSA key generation counts against
// MaxCostly.
const rsa4096Cost = 4

var errDSA error = safeError("dsa keys are not supported: generating their parameters takes too long")

func boundedGenPrivateKey(m *meter, sf template.FuncMap) any {
	orig := sf["genPrivateKey"].(func(string) string)
	return func(typ string) (string, error) {
		if typ == "dsa" {
			return "", errDSA
		}
		cost := 1
		if typ == "" || typ == "rsa" {
			// sprig generates 4096-bit RSA keys: one to several seconds
			// of CPU, so one uses the whole default allowance.
			cost = rsa4096Cost
		}
		if err := m.costlyCalls(cost); err != nil {
			return "", err
		}
		return orig(typ), nil
	}
}

// printSize estimates how long the printed form of args is, or false when
// it is over limit: a string prints as itself, anything else as at most
// printScalar bytes per scalar and element.
func printSize(args []any, limit int) (int, bool) {
	total := 0
	for _, a := range args {
		n, ok := deepSize(reflect.ValueOf(a), limit-total, printScalar)
		if !ok {
			return 0, false
		}
		total += n + 1
		if total > limit {
			return 0, false
		}
	}
	return total, true
}

// printScalar bounds the printed length of a number or boolean
// ("-1.2345678901234567e+308" is 24 bytes).
const printScalar = 24

func boundedPrint(print func(...any) string) func(m *meter, _ template.FuncMap) any {
	return func(m *meter, _ template.FuncMap) any {
		return func(args ...any) (string, error) {
			if _, ok := printSize(args, m.limits.MaxValue); !ok {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
			return print(args...), nil
		}
	}
}

// boundedPrintf is printf with its output bounded: the format's widths and
// precisions, plus each verb printing the largest argument, must fit.
func boundedPrintf(m *meter, _ template.FuncMap) any {
	return func(format string, args ...any) (string, error) {
		largest := 0
		for _, a := range args {
			n, ok := printSize([]any{a}, m.limits.MaxValue)
			if !ok {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
			largest = max(largest, n)
		}
		est, verbs, stars, ok := formatSize(format, m.limits.MaxValue)
		if !ok {
			return "", over("value size", sizeLimit(m.limits.MaxValue))
		}
		if stars > 0 {
			// A * takes its width or precision from an int argument.
			widest := 0
			for _, a := range args {
				if n, isInt := a.(int); isInt {
					widest = max(widest, min(abs(n), m.limits.MaxValue+1))
				}
			}
			if widest > 0 && stars > (m.limits.MaxValue-est)/widest {
				return "", over("value size", sizeLimit(m.limits.MaxValue))
			}
			est += stars * widest
		}
		if largest > 0 && verbs > (m.limits.MaxValue-est)/largest {
			return "", over("value size", sizeLimit(m.limits.MaxValue))
		}
		return fmt.Sprintf(format, args...), nil
	}
}

// maxUniqCompare bounds the element comparisons uniq makes for elements
// that are not comparable with == (lists, maps), which sprig compares with
// reflect.DeepEqual against every element kept so far.
const maxUniqCompare = 1_000_000

// boundedUniq is sprig's uniq (first occurrences, in order, equal by
// reflect.DeepEqual) in linear time for comparable elements and with a
// bounded number of deep comparisons for the others.
func boundedUniq(must bool) func(m *meter, _ template.FuncMap) any {
	return func(m *meter, _ template.FuncMap) any {
		uniq := func(list any) ([]any, error) {
			v := reflect.ValueOf(list)
			if v.Kind() != reflect.Slice && v.Kind() != reflect.Array {
				return nil, safeError("uniq needs a list")
			}
			out := []any{}
			seen := map[any]bool{}
			var other []any
			compares := 0
			for i := 0; i < v.Len(); i++ {
				item := v.Index(i).Interface()
				if item == nil || reflect.TypeOf(item).Comparable() && comparable(reflect.ValueOf(item)) {
					if !seen[item] {
						seen[item] = true
						out = append(out, item)
					}
					continue
				}
				dup := false
				for _, o := range other {
					if compares++; compares > maxUniqCompare {
						return nil, over("uniq comparisons", maxUniqCompare)
					}
					if reflect.DeepEqual(o, item) {
						dup = true
						break
					}
				}
				if !dup {
					other = append(other, item)
					out = append(out, item)
				}
			}
			return out, nil
		}
		if must {
			return uniq
		}
		return func(list any) []any {
			out, err := uniq(list)
			if err != nil {
				panic(err)
			}
			return out
		}
	}
}

// comparable says whether == on v cannot panic: its type is comparable and
// no interface inside it holds an incomparable value.
func comparable(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Interface:
		return v.IsNil() || comparable(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !comparable(v.Field(i)) {
				return false
			}
		}
	case reflect.Array:
		for i := 0; i < v.Len(); i++ {
			if !comparable(v.Index(i)) {
				return false
			}
		}
	}
	return v.Type().Comparable()
}

// formatSize returns a printf format's length plus every width and
// precision it asks for, how many verbs it has and how many widths or
// precisions come from an argument (*); ok is false when size is over
// limit.
func formatSize(format string, limit int) (size, verbs, stars int, ok bool) {
	size = len(format)
	number := func(i int) (int, int) {
		n := 0
		for i < len(format) && format[i] >= '0' && format[i] <= '9' {
			n = min(n*10+int(format[i]-'0'), limit+1)
			i++
		}
		return n, i
	}
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
		verbs++
		i++
		for i < len(format) && strings.IndexByte("+-# 0", format[i]) >= 0 {
			i++
		}
		if i < len(format) && format[i] == '[' {
			for i < len(format) && format[i] != ']' {
				i++
			}
			i++
		}
		var n int
		if i < len(format) && format[i] == '*' {
			stars++
			i++
		} else {
			n, i = number(i)
			size += n
		}
		if i < len(format) && format[i] == '.' {
			if i+1 < len(format) && format[i+1] == '*' {
				stars++
				i += 2
			} else {
				n, i = number(i + 1)
				size += n
			}
		}
		if size > limit {
			return size, verbs, stars, false
		}
	}
	return size, verbs, stars, true
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
