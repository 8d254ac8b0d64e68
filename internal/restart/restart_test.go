package restart

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/keyferry/keyferry/internal/kube"
)

// podUsing is a pod template whose one container reads Secret name through
// envFrom.
func podUsing(names ...string) corev1.PodTemplateSpec {
	c := corev1.Container{Name: "app"}
	for _, n := range names {
		c.EnvFrom = append(c.EnvFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: n}}})
	}
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

func workload(anns map[string]string, tpl corev1.PodTemplateSpec) Workload {
	return Workload{Kind: KindDeployment, Namespace: "team", Name: "app", Annotations: anns, Template: tpl}
}

func secret(name string, anns map[string]string) Secret {
	return Secret{Namespace: "team", Name: name, Annotations: anns}
}

func TestDecide(t *testing.T) {
	auto := map[string]string{AnnotationAuto: "true"}
	paused := workload(auto, podUsing("db"))
	paused.Paused = true
	otherNS := secret("db", nil)
	otherNS.Namespace = "other"
	tplAuto := podUsing("db")
	tplAuto.Annotations = map[string]string{AnnotationAuto: "true"}

	tests := []struct {
		name    string
		w       Workload
		s       Secret
		restart bool
		reason  string
	}{
		{"auto restarts for a referenced Secret", workload(auto, podUsing("db")), secret("db", nil), true, ReasonAutoReferenced},
		{"auto accepts strconv booleans", workload(map[string]string{AnnotationAuto: "True"}, podUsing("db")), secret("db", nil), true, ReasonAutoReferenced},
		{"auto ignores a Secret the pods do not use", workload(auto, podUsing("other")), secret("db", nil), false, ReasonNotReferenced},
		{"auto false restarts nothing", workload(map[string]string{AnnotationAuto: "false"}, podUsing("db")), secret("db", nil), false, ReasonNotReferenced},
		{"secret auto restarts for a referenced Secret", workload(map[string]string{AnnotationSecretAuto: "true"}, podUsing("db")), secret("db", nil), true, ReasonAutoReferenced},
		{"auto on the pod template counts when the workload has none", workload(nil, tplAuto), secret("db", nil), true, ReasonAutoReferenced},
		{"the workload's annotations hide the pod template's", workload(map[string]string{AnnotationAuto: "false"}, tplAuto), secret("db", nil), false, ReasonNotReferenced},
		{"reload names the Secret", workload(map[string]string{AnnotationSecretReload: "cache, db"}, podUsing()), secret("db", nil), true, ReasonNamedInReload},
		{"reload entries are anchored expressions", workload(map[string]string{AnnotationSecretReload: "db-.*"}, podUsing()), secret("db-main", nil), true, ReasonNamedInReload},
		{"reload does not match a longer name", workload(map[string]string{AnnotationSecretReload: "db"}, podUsing()), secret("db-main", nil), false, ReasonNotReferenced},
		{"a bad reload entry leaves the others", workload(map[string]string{AnnotationSecretReload: "a(,db"}, podUsing()), secret("db", nil), true, ReasonNamedInReload},
		{"search restarts for a referenced matching Secret", workload(map[string]string{AnnotationSearch: "true"}, podUsing("db")), secret("db", map[string]string{AnnotationMatch: "true"}), true, ReasonSearchMatched},
		{"search ignores a Secret without match", workload(map[string]string{AnnotationSearch: "true"}, podUsing("db")), secret("db", nil), false, ReasonNotReferenced},
		{"search ignores an unreferenced matching Secret", workload(map[string]string{AnnotationSearch: "true"}, podUsing()), secret("db", map[string]string{AnnotationMatch: "true"}), false, ReasonNotReferenced},
		{"no annotation restarts nothing", workload(nil, podUsing("db")), secret("db", nil), false, ReasonNotAnnotated},
		{"an ignored Secret restarts nothing", workload(auto, podUsing("db")), secret("db", map[string]string{AnnotationIgnore: "true"}), false, ReasonSecretIgnored},
		{"an excluded Secret restarts nothing", workload(map[string]string{AnnotationAuto: "true", AnnotationSecretExclude: "x, db"}, podUsing("db")), secret("db", nil), false, ReasonSecretExcluded},
		{"a paused Deployment is skipped", paused, secret("db", nil), false, ReasonPaused},
		{"a paused Deployment that would not restart is not reported", paused, secret("cache", nil), false, ReasonNotReferenced},
		{"a Secret of another namespace restarts nothing", workload(auto, podUsing("db")), otherNS, false, ReasonOtherNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(Input{Workload: tt.w, Secret: tt.s})
			if d.Restart != tt.restart || d.Reason != tt.reason {
				t.Fatalf("Decide = restart %v reason %s (%s); want restart %v reason %s", d.Restart, d.Reason, d.Message, tt.restart, tt.reason)
			}
			if d.Message == "" {
				t.Fatal("a decision has no message")
			}
		})
	}
}

func TestDecideReportsBadReloadEntries(t *testing.T) {
	d := Decide(Input{Workload: workload(map[string]string{AnnotationSecretReload: "a(,db"}, podUsing()), Secret: secret("db", nil)})
	if d.Problems == nil || !strings.Contains(d.Problems.Error(), `"a("`) {
		t.Fatalf("Problems = %v; want the bad entry named", d.Problems)
	}
	d = Decide(Input{Workload: workload(map[string]string{AnnotationSecretReload: "a("}, podUsing()), Secret: secret("db", nil)})
	if d.Restart || d.Problems == nil {
		t.Fatalf("Decide = %+v; want no restart and the problem reported", d)
	}
}

func TestReferences(t *testing.T) {
	ref := corev1.LocalObjectReference{Name: "db"}
	mount := []corev1.VolumeMount{{Name: "v", MountPath: "/s"}}
	tests := []struct {
		name string
		spec corev1.PodSpec
		want bool
	}{
		{"env valueFrom", corev1.PodSpec{Containers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "P", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref, Key: "p"}}}}}}}, true},
		{"envFrom", podUsing("db").Spec, true},
		{"init container envFrom", corev1.PodSpec{InitContainers: podUsing("db").Spec.Containers}, true},
		{"mounted secret volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}, Containers: []corev1.Container{{VolumeMounts: mount}}}, true},
		{"mounted projected volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{}}, {Secret: &corev1.SecretProjection{LocalObjectReference: ref}}}}}}}, Containers: []corev1.Container{{VolumeMounts: mount}}}, true},
		{"unmounted secret volume", corev1.PodSpec{Volumes: []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db"}}}}, Containers: []corev1.Container{{}}}, false},
		{"imagePullSecrets do not count", corev1.PodSpec{ImagePullSecrets: []corev1.LocalObjectReference{ref}, Containers: []corev1.Container{{}}}, false},
		{"a ConfigMap of the same name does not count", corev1.PodSpec{Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref}}}}}}, false},
		{"another Secret", podUsing("cache").Spec, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := References(&tt.spec, "db"); got != tt.want {
				t.Fatalf("References = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestChangeOf(t *testing.T) {
	secret := func(managed bool, hash, value string) *corev1.Secret {
		s := &corev1.Secret{Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"k": []byte(value)}}
		s.Labels, s.Annotations = map[string]string{}, map[string]string{}
		if managed {
			s.Labels[labelManaged] = labelManagedValue
		}
		if hash != "" {
			s.Annotations[annotationDataHash] = hash
		}
		return s
	}
	retyped := secret(true, "b", "v1")
	retyped.Type = "example.com/other"
	extraKey := secret(true, "b", "v1")
	extraKey.Data["k2"] = []byte("x")
	// As the operator's cache holds them: the values' digest only.
	digested := func(s *corev1.Secret) *corev1.Secret {
		kube.DigestSecretData(s)
		return s
	}
	tests := []struct {
		name     string
		old, cur *corev1.Secret
		reason   string
	}{
		{"a new hash with new data is a change", secret(true, "a", "v1"), secret(true, "b", "v2"), ChangeContentChanged},
		{"a new type is a change", secret(true, "a", "v1"), retyped, ChangeContentChanged},
		{"a new key is a change", secret(true, "a", "v1"), extraKey, ChangeContentChanged},
		{"the same hash is a no-op write or someone else's edit", secret(true, "a", "v1"), secret(true, "a", "v2"), ChangeHashUnchanged},
		{"no old hash is a first write or an adoption", secret(true, "", "v1"), secret(true, "b", "v2"), ChangeNoHash},
		{"a removed hash is no change", secret(true, "a", "v1"), secret(true, "", "v2"), ChangeNoHash},
		{"a new hash over the same data is no change", secret(true, "a", "v1"), secret(true, "b", "v1"), ChangeDataUnchanged},
		{"cached copies with new data are a change", digested(secret(true, "a", "v1")), digested(secret(true, "b", "v2")), ChangeContentChanged},
		{"cached copies with the same data are no change", digested(secret(true, "a", "v1")), digested(secret(true, "b", "v1")), ChangeDataUnchanged},
		{"a cached copy and the same data are no change", digested(secret(true, "a", "v1")), secret(true, "b", "v1"), ChangeDataUnchanged},
		{"an unmanaged Secret never counts", secret(false, "a", "v1"), secret(false, "b", "v2"), ChangeNotManaged},
		{"a Secret that just became managed does not count", secret(false, "a", "v1"), secret(true, "b", "v2"), ChangeNotManaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := ChangeOf(tt.old, tt.cur)
			if reason != tt.reason || ok != (tt.reason == ChangeContentChanged) || ContentChanged(tt.old, tt.cur) != ok {
				t.Fatalf("ChangeOf = %v %s; want %s", ok, reason, tt.reason)
			}
		})
	}
}

func TestRestartPatch(t *testing.T) {
	now := time.Date(2026, 12, 4, 19, 0, 0, 500, time.UTC)
	v := RestartedAt(now, "")
	if v != now.UTC().Format("2006-01-02T15:04:05Z07:00") {
		t.Fatalf("RestartedAt = %s", v)
	}
	if next := RestartedAt(now, v); next == v {
		t.Fatalf("RestartedAt repeats the previous value %s", v)
	}
	p, err := RestartPatch(v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"spec":{"template":{"metadata":{"annotations":{"keyferry.io/restartedAt":"` + v + `"}}}}}`
	if string(p) != want {
		t.Fatalf("RestartPatch = %s; want %s", p, want)
	}
}

func TestParseNameList(t *testing.T) {
	tests := []struct {
		value   string
		match   []string
		noMatch []string
		bad     bool
	}{
		{value: "db", match: []string{"db"}, noMatch: []string{"db2", "xdb", ""}},
		{value: " a , b ,, ", match: []string{"a", "b"}, noMatch: []string{"a , b", ""}},
		{value: "app-.*", match: []string{"app-", "app-x"}, noMatch: []string{"my-app-x"}},
		{value: "a|b", match: []string{"a", "b"}, noMatch: []string{"ab", "xb"}},
		{value: "[", bad: true, noMatch: []string{"["}},
		{value: "", noMatch: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			l, err := ParseNameList(tt.value)
			if (err != nil) != tt.bad {
				t.Fatalf("ParseNameList error = %v; want error %v", err, tt.bad)
			}
			for _, n := range tt.match {
				if !l.Matches(n) {
					t.Errorf("%q does not match %q", tt.value, n)
				}
			}
			for _, n := range tt.noMatch {
				if l.Matches(n) {
					t.Errorf("%q matches %q", tt.value, n)
				}
			}
		})
	}
}

func TestExactListContains(t *testing.T) {
	if !ExactListContains("a, db ,c", "db") || ExactListContains("a,db-x", "db") || ExactListContains("", "") {
		t.Fatal("ExactListContains does not read a trimmed comma list exactly")
	}
}

func FuzzParseNameList(f *testing.F) {
	for _, s := range []string{"db", "a,b", "app-.*", "[", "a(,b", strings.Repeat("a,", 200), "(?i)DB", `\p{L}+`} {
		f.Add(s, "db")
	}
	f.Fuzz(func(t *testing.T, value, name string) {
		l, err := ParseNameList(value)
		if len(l) > maxNameListEntries {
			t.Fatalf("%d entries compiled", len(l))
		}
		_ = l.Matches(name)
		if err == nil && !strings.Contains(value, "\\") && !strings.ContainsAny(value, ".*+?()[]{}|^$") {
			// A list of plain names matches exactly its names.
			want := ExactListContains(value, name) && strings.TrimSpace(name) == name && name != ""
			if got := l.Matches(name); got != want {
				t.Fatalf("plain list %q matches %q = %v; want %v", value, name, got, want)
			}
		}
	})
}

func FuzzExactListContains(f *testing.F) {
	f.Add("a, db", "db")
	f.Fuzz(func(t *testing.T, value, name string) {
		if ExactListContains(value, name) && !strings.Contains(value, strings.TrimSpace(name)) {
			t.Fatalf("%q contains %q", value, name)
		}
	})
}
