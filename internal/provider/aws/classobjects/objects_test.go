package classobjects_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyferry/keyferry/internal/provider/aws/classobjects"
)

// Parse resolves each object's type, versions and failover.
func TestParseClassObjectsFields(t *testing.T) {
	objs, err := classobjects.Parse(`
- objectName: "arn:aws:secretsmanager:us-east-1:123456789012:secret:Primary-12345"
  objectAlias: primary
  objectVersion: " v1 "
  objectVersionLabel: AWSPREVIOUS
  failoverObject:
    objectName: Failover
    objectVersion: v1
    objectVersionLabel: AWSCURRENT
- objectName: /p
  objectType: ssmparameter
  objectVersion: 3
`, classobjects.PathTranslation{Char: '_'})
	if err != nil {
		t.Fatal(err)
	}
	want := []classobjects.Object{
		{Name: "arn:aws:secretsmanager:us-east-1:123456789012:secret:Primary-12345", Type: classobjects.TypeSecretsManager, Alias: "primary",
			Version: "v1", VersionLabel: "AWSPREVIOUS", Failover: &classobjects.FailoverObject{Name: "Failover", Version: "v1", VersionLabel: "AWSCURRENT"}},
		{Name: "/p", Type: classobjects.TypeSSMParameter, Version: "3"},
	}
	if len(objs) != len(want) {
		t.Fatalf("%d objects, want %d", len(objs), len(want))
	}
	for i := range want {
		g, w := objs[i], want[i]
		if g.Name != w.Name || g.Type != w.Type || g.Alias != w.Alias || g.Version != w.Version || g.VersionLabel != w.VersionLabel ||
			(g.Failover == nil) != (w.Failover == nil) || (g.Failover != nil && *g.Failover != *w.Failover) {
			t.Errorf("objects[%d] = %+v, want %+v", i, g, w)
		}
	}
}

// FuzzParse: any objects parameter parses or fails without a
// panic; what parses yields file names that stay in the mount directory and
// objects of a known type.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"- objectName: \"MySecret\"\n  objectType: \"secretsmanager\"\n",
		"- objectName: MySecret\n  objectType: secretsmanager\n  jmesPath:\n    - path: username\n      objectAlias: u\n",
		"- objectName: \"arn:aws:secretsmanager:us-east-1:123456789012:secret:P-1\"\n  failoverObject:\n    objectName: F\n  objectAlias: a\n",
		"[{objectName: /a/../b, objectType: ssmparameter, objectVersion: 1}]",
		"- &a {objectName: x, objectType: ssmparameter}\n- *a\n",
		"- objectName: s\n  objectType: secretsmanager\n  jmesPath: [{path: 'a[?b==`1`].c', objectAlias: c}]\n",
	} {
		f.Add(s, "")
		f.Add(s, "False")
	}
	f.Fuzz(func(t *testing.T, s, translate string) {
		tr, err := classobjects.ParsePathTranslation(translate)
		if err != nil {
			return
		}
		objs, err := classobjects.Parse(s, tr)
		if err != nil {
			return
		}
		if len(objs) == 0 {
			t.Fatal("no error and no objects")
		}
		for _, o := range objs {
			if o.Type != classobjects.TypeSecretsManager && o.Type != classobjects.TypeSSMParameter {
				t.Fatalf("object of type %q", o.Type)
			}
			names := []string{o.FileName(tr)}
			for _, e := range o.JMESPath {
				names = append(names, tr.File(e.Alias))
			}
			for _, n := range names {
				if n == "" || strings.HasPrefix(n, "/") || slices.Contains(strings.Split(n, "/"), "..") {
					t.Fatalf("file name %q leaves the mount directory", n)
				}
			}
		}
	})
}
