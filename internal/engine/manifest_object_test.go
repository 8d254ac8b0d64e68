package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/engine/render"
)

func objectPlan(tpl *Template) Plan {
	p := configMapPlan()
	p.Target.Name = "app-settings"
	p.Target.Manifest = &Manifest{APIVersion: "config.example.com/v1", Kind: "AppConfig"}
	p.Template = tpl
	return p
}

func field(t *testing.T, path string, v any, merge bool) render.Field {
	t.Helper()
	steps, err := render.ParsePath(path)
	if err != nil {
		t.Fatal(err)
	}
	return render.Field{Steps: steps, Value: v, Merge: merge}
}

func TestPlaceContent(t *testing.T) {
	tests := []struct {
		name    string
		current string
		tpl     *Template
		d       *desired
		want    string
		reason  string
	}{
		{name: "without a template every key goes to spec.data as a string",
			current: `{}`, d: &desired{data: map[string][]byte{"a": []byte("1"), "b": []byte("x")}},
			want: `{"spec":{"data":{"a":"1","b":"x"}}}`},
		{name: "spec.data is replaced, other spec fields kept",
			current: `{"spec":{"data":{"old":"x"},"replicas":2}}`, d: &desired{data: map[string][]byte{"a": []byte("1")}},
			want: `{"spec":{"data":{"a":"1"},"replicas":2}}`},
		{name: "a template places fields and writes no data unless it renders data",
			current: `{"spec":{"database":{"port":1,"keep":true}}}`, tpl: &Template{},
			d:    &desired{data: map[string][]byte{"fetched": []byte("v")}, fields: []render.Field{field(t, "spec.database", map[string]any{"port": int64(5432)}, true)}},
			want: `{"spec":{"database":{"keep":true,"port":5432}}}`},
		{name: "rendered data goes to the top-level data field",
			current: `{}`, tpl: &Template{}, d: &desired{rendersData: true, data: map[string][]byte{"k": []byte("v")}},
			want: `{"data":{"k":"v"}}`},
		{name: "a value that is not UTF-8 is refused",
			current: `{}`, d: &desired{data: map[string][]byte{"raw": {0xff}}}, reason: ReasonInvalidValue},
		{name: "a path into metadata is refused",
			current: `{}`, tpl: &Template{}, d: &desired{fields: []render.Field{field(t, "metadata.namespace", "other", false)}}, reason: ReasonInvalidSpec},
		{name: "paths naming too many array elements in all are refused",
			current: `{}`, tpl: &Template{}, d: &desired{fields: []render.Field{field(t, "spec.a[6000]", "x", false), field(t, "spec.b[6000]", "y", false)}}, reason: ReasonInvalidSpec},
		{name: "a path through a string fails without quoting it",
			current: `{"spec":"kfCANARYobject"}`, tpl: &Template{}, d: &desired{fields: []render.Field{field(t, "spec.x", "v", false)}}, reason: ReasonTemplateFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var obj map[string]any
			if err := json.Unmarshal([]byte(tt.current), &obj); err != nil {
				t.Fatal(err)
			}
			err := placeContent(obj, objectPlan(tt.tpl), tt.d)
			if tt.reason != "" {
				var e *Error
				if !errors.As(err, &e) || e.Reason != tt.reason {
					t.Fatalf("err = %v, want reason %s", err, tt.reason)
				}
				if strings.Contains(err.Error(), "kfCANARY") {
					t.Fatalf("error quotes a value: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(obj)
			if string(got) != tt.want {
				t.Fatalf("got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestBuildObjectKeepsIdentityAndMarks(t *testing.T) {
	gvk := schema.GroupVersionKind{Group: "config.example.com", Version: "v1", Kind: "AppConfig"}
	obj := &unstructured.Unstructured{Object: map[string]any{}}
	plan := objectPlan(&Template{})
	plan.Target.SetOwnerReference = true
	d := &desired{labels: map[string]string{"app": "x"}, fields: []render.Field{field(t, "spec.a", "b", false)}}
	if err := buildObject(obj, gvk, client.ObjectKey{Namespace: "ns", Name: "app-settings"}, plan, d); err != nil {
		t.Fatal(err)
	}
	if obj.GroupVersionKind() != gvk || obj.GetNamespace() != "ns" || obj.GetName() != "app-settings" {
		t.Errorf("identity = %v %s/%s", obj.GroupVersionKind(), obj.GetNamespace(), obj.GetName())
	}
	if obj.GetLabels()[LabelManaged] != LabelManagedValue || obj.GetLabels()["app"] != "x" {
		t.Errorf("labels = %v", obj.GetLabels())
	}
	if refs := obj.GetOwnerReferences(); len(refs) != 1 || refs[0].UID != plan.Owner.UID || refs[0].Controller == nil || !*refs[0].Controller {
		t.Errorf("ownerReferences = %v", refs)
	}
}

func TestSameObjectContentComparesNumbersAsJSON(t *testing.T) {
	a := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"port": int64(5432)}, "metadata": map[string]any{"resourceVersion": "1"}, "status": map[string]any{"x": "y"}}}
	b := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"port": float64(5432)}, "metadata": map[string]any{"resourceVersion": "2"}}}
	if !sameObjectContent(a, b) {
		t.Error("int64 5432 and float64 5432 differ, or metadata/status were compared")
	}
	b.Object["spec"] = map[string]any{"port": int64(5433)}
	if sameObjectContent(a, b) {
		t.Error("a changed port compares equal")
	}
}

func TestObjectAPIErrorNamesTheChartValueOnForbidden(t *testing.T) {
	m := &Manifest{APIVersion: "config.example.com/v1", Kind: "AppConfig"}
	mapping := &meta.RESTMapping{Resource: schema.GroupVersionResource{Group: "config.example.com", Version: "v1", Resource: "appconfigs"}}
	forbidden := apierrors.NewForbidden(schema.GroupResource{Group: "config.example.com", Resource: "appconfigs"}, "app", errors.New("no rule"))
	e := objectAPIError("create", m, mapping, "ns", "app", forbidden)
	if e.Reason != ReasonTargetForbidden {
		t.Fatalf("reason = %s", e.Reason)
	}
	for _, want := range []string{"create", "AppConfig (config.example.com/v1)", `"appconfigs"`, "genericTargets.resources", "namespace ns"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("%q does not name %s", e.Error(), want)
		}
	}
	if e := objectAPIError("update", m, mapping, "ns", "app", apierrors.NewConflict(mapping.Resource.GroupResource(), "app", errors.New("x"))); e.Reason != ReasonWriteFailed {
		t.Errorf("conflict reason = %s", e.Reason)
	}
}
