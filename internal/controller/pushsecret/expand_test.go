package pushsecret

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/engine"
	"github.com/keyferry/keyferry/internal/engine/values"
)

// testRewriters renames keys by regexp, and by transform with a stand-in
// for the template (upper case), so the expansion is tested without the
// engine; the engine's transform is tested end to end.
func testRewriters(rw engine.Rewrite) (values.Rewriter, error) {
	if rw.Transform != "" {
		return func(k string) (string, error) { return strings.ToUpper(k), nil }, nil
	}
	return values.RegexpRewriter(rw.RegexpSource, rw.RegexpTarget)
}

// pushList renders pushes as "secretKey->remote[/property]" (bundles as
// "[keys]->remote"), in order.
func pushList(ps []Push) string {
	var out []string
	for _, p := range ps {
		src := p.SecretKey
		if p.Only != nil {
			src = fmt.Sprint(p.Only)
		}
		out = append(out, src+"->"+RemoteKey(p.Ref))
	}
	return strings.Join(out, " ")
}

func TestPushesFor(t *testing.T) {
	source := map[string][]byte{"db-host": nil, "db-port": nil, "api-key": nil, "username": nil}
	const head = `
spec:
  secretStoreRefs: [{name: s}, {name: other}]
  selector: {secret: {name: src}}
`
	tests := []struct {
		name string
		doc  string
		data map[string][]byte
		// store is the target's labels; the target is SecretStore s.
		labels map[string]string
		want   string
		// fails is part of the error; the reason is InvalidSpec.
		fails string
	}{
		{"dataTo pushes every key under its own name (ESO's basic example)", head + "  dataTo: [{storeRef: {name: s}}]\n", source, nil,
			"api-key->api-key db-host->db-host db-port->db-port username->username", ""},
		{"match.regexp filters the keys", head + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^db-.*'}}]\n", source, nil,
			"db-host->db-host db-port->db-port", ""},
		{"rewrites apply in order (ESO's chained example)", head + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^db-.*'}, rewrite: [{regexp: {source: '^db-', target: ''}}, {regexp: {source: '^', target: 'prod/'}}]}]\n", source, nil,
			"db-host->prod/host db-port->prod/port", ""},
		{"a transform renames the keys", head + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^user'}, rewrite: [{transform: {template: x}}]}]\n", source, nil,
			"username->USERNAME", ""},
		{"remoteKey bundles the matched keys into one remote secret", head + "  dataTo: [{storeRef: {name: s}, remoteKey: app/db, match: {regexp: '^db-'}}]\n", source, nil,
			"[db-host db-port]->app/db", ""},
		{"explicit data wins for its source key (ESO's override example)", head + `  dataTo: [{storeRef: {name: s}}]
  data:
    - match: {secretKey: db-host, remoteRef: {remoteKey: custom/database/hostname}}
    - match: {secretKey: api-key, remoteRef: {remoteKey: custom/api/secret-key}}
`, source, nil, "db-port->db-port username->username db-host->custom/database/hostname api-key->custom/api/secret-key", ""},
		{"a dataTo of another store pushes nothing here", head + "  dataTo: [{storeRef: {name: other}}]\n", source, nil, "", ""},
		{"a dataTo selects its stores by label", head + "  dataTo: [{storeRef: {labelSelector: {matchLabels: {env: prod}}}, match: {regexp: '^api'}}]\n", source, map[string]string{"env": "prod"},
			"api-key->api-key", ""},
		{"a dataTo label selector that does not match", head + "  dataTo: [{storeRef: {labelSelector: {matchLabels: {env: prod}}}}]\n", source, map[string]string{"env": "dev"}, "", ""},
		{"a match that selects nothing pushes nothing", head + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^nope'}}]\n", source, nil, "", ""},
		{"ReverseUnicode decodes keys before match and rewrite; the value is read under the Secret's key", head + "  dataTo: [{storeRef: {name: s}, conversionStrategy: ReverseUnicode, match: {regexp: '/'}}]\n",
			map[string][]byte{"app_U002f_db": nil, "plain": nil}, nil, "app_U002f_db->app/db", ""},
		{"ReverseUnicode in a data entry: secretKey is the decoded key, and it wins over dataTo", head + `  dataTo: [{storeRef: {name: s}}]
  data:
    - conversionStrategy: ReverseUnicode
      match: {secretKey: app/db, remoteRef: {remoteKey: r}}
`, map[string][]byte{"app_U002f_db": nil, "plain": nil}, nil, "plain->plain app/db->r", ""},
		{"two dataTo entries pushing to the same remote key", head + "  dataTo: [{storeRef: {name: s}, match: {regexp: '^db-host$'}}, {storeRef: {name: s}, match: {regexp: '^db-port$'}, rewrite: [{regexp: {source: port, target: host}}]}]\n", source, nil,
			"", `both push to remote key "db-host"`},
		{"data and dataTo pushing to the same remote ref", head + `  dataTo: [{storeRef: {name: s}, match: {regexp: '^db-host$'}}]
  data: [{match: {secretKey: api-key, remoteRef: {remoteKey: db-host}}}]
`, source, nil, "", `both push to remote ref "db-host"`},
		{"a rewrite to an empty remote key", head + "  dataTo: [{storeRef: {name: s}, rewrite: [{regexp: {source: '.*', target: ''}}]}]\n", source, nil,
			"", "empty remote key"},
		{"two keys converting to the same", head + "  dataTo: [{storeRef: {name: s}, conversionStrategy: ReverseUnicode}]\n", map[string][]byte{"a_U002f_b": nil, "a/b": nil}, nil,
			"", `convert to "a/b"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Compile(parse(t, tt.doc))
			if err != nil {
				t.Fatal(err)
			}
			got, err := spec.pushesFor(Target{Store: engine.StoreRef{Kind: esv1.SecretStoreKind, Name: "s"}, Labels: tt.labels}, tt.data, testRewriters)
			if tt.fails != "" {
				var ee *engine.Error
				if !errors.As(err, &ee) || ee.Reason != engine.ReasonInvalidSpec || !strings.Contains(err.Error(), tt.fails) {
					t.Fatalf("pushesFor = %v; want InvalidSpec naming %q", err, tt.fails)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s := pushList(got); s != tt.want {
				t.Fatalf("pushes = %q\n           want %q", s, tt.want)
			}
		})
	}
}

func TestValueOf(t *testing.T) {
	src := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"a_U002f_b": []byte("1"), "c": []byte("2")}}
	src.Name = "src"
	v, err := valueOf(src, Push{Conversion: "ReverseUnicode", Only: []string{"a/b"}})
	if err != nil || fmt.Sprint(v.Secret) != "map[a/b:[49]]" || !v.Whole() {
		t.Fatalf("bundle value = %v, %v; want only the matched key, converted", v.Secret, err)
	}
	v, err = valueOf(src, Push{SecretKey: "a/b", Conversion: "ReverseUnicode"})
	if err != nil || string(v.Value) != "1" {
		t.Fatalf("converted key value = %v; want the value of a_U002f_b", err)
	}
	v, err = valueOf(src, Push{})
	if err != nil || len(v.Secret) != 2 || v.Type != string(corev1.SecretTypeOpaque) {
		t.Fatalf("whole Secret = %v, %v", v, err)
	}
	_, err = valueOf(src, Push{SecretKey: "a/b"})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Reason != ReasonSourceKeyNotFound {
		t.Fatalf("a key without its conversion = %v; want SourceKeyNotFound", err)
	}
}

func TestReverseKey(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"a_U002f_b":        "a/b",
		"_U0041__U00e9_":   "Aé",
		"x_U1F600_y":       "x😀y",
		"_U12_":            "_U12_",
		"a_U002F_b_U002f_": "a/b/",
	} {
		if got := reverseKey("ReverseUnicode", in); got != want {
			t.Errorf("reverseKey(%q) = %q; want %q", in, got, want)
		}
		if got := reverseKey("None", in); got != in {
			t.Errorf("None changed %q", in)
		}
	}
}
