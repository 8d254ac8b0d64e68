// Package restart decides which workloads keyferry restarts when the
// content of a Secret it manages really changed, honouring the annotations
// Stakater Reloader users already put on their workloads and Secrets.
//
// It is pure logic; internal/controller/restart gathers the objects and acts:
//
//   - ChangeOf says whether a Secret update is a change of content:
//     keyferry's data-hash annotation went from one non-empty value to a
//     different one and the data differ. A creation, a write that changed
//     nothing, an edit by someone else and a Secret keyferry does not manage
//     never are.
//   - Decide runs a chain of small named checks (in the style of
//     cert-manager's policies) over one workload and one changed Secret; the
//     first check that decides wins, and its reason and message are what the
//     controller reports in Events.
//   - Debouncer merges the changes of many Secrets into one restart per
//     workload within a short window.
//   - RestartPatch is the merge patch that restarts a workload: the
//     pod-template annotation keyferry.io/restartedAt, as
//     `kubectl rollout restart` does with its own annotation.
//
// docs/restarts.md describes the behaviour for users.
package restart

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Reloader's annotations keyferry honours, with Reloader's meanings.
const (
	// AnnotationAuto on a workload ("true"): restart when any Secret the pod
	// template references changes.
	AnnotationAuto = "reloader.stakater.com/auto"
	// AnnotationSecretAuto on a workload ("true"): as AnnotationAuto,
	// restricted to Secrets (keyferry only watches Secrets anyway).
	AnnotationSecretAuto = "secret.reloader.stakater.com/auto"
	// AnnotationSecretReload on a workload: a comma-separated list of Secret
	// names (each an anchored regular expression) whose change restarts the
	// workload whether or not the pod template references them.
	AnnotationSecretReload = "secret.reloader.stakater.com/reload"
	// AnnotationSearch on a workload ("true"): restart when a referenced
	// Secret that carries AnnotationMatch changes.
	AnnotationSearch = "reloader.stakater.com/search"
	// AnnotationMatch on a Secret ("true"): the Secret is one that
	// AnnotationSearch workloads restart for.
	AnnotationMatch = "reloader.stakater.com/match"
	// AnnotationIgnore on a Secret ("true"): its changes restart nothing.
	AnnotationIgnore = "reloader.stakater.com/ignore"
	// AnnotationSecretExclude on a workload: a comma-separated list of
	// Secret names (exact) that never restart it, even under auto.
	AnnotationSecretExclude = "secrets.exclude.reloader.stakater.com/reload"
)

// AnnotationRestartedAt is the pod-template annotation keyferry sets
// (RFC3339) to restart a workload.
const AnnotationRestartedAt = "keyferry.io/restartedAt"

// Workload kinds keyferry restarts.
const (
	KindDeployment  = "Deployment"
	KindStatefulSet = "StatefulSet"
	KindDaemonSet   = "DaemonSet"
	// KindRollout is Argo Rollouts' argoproj.io/v1alpha1 Rollout.
	KindRollout = "Rollout"
)

// Workload is what the checks look at of a Deployment, StatefulSet or
// DaemonSet.
type Workload struct {
	Kind      string
	Namespace string
	Name      string
	UID       types.UID
	// Annotations are the workload's own annotations.
	Annotations map[string]string
	// Template is the pod template.
	Template corev1.PodTemplateSpec
	// Paused is a Deployment's or Rollout's spec.paused.
	Paused bool
}

// String is "Kind/name".
func (w Workload) String() string { return w.Kind + "/" + w.Name }

// Secret is what the checks look at of a changed Secret.
type Secret struct {
	Namespace   string
	Name        string
	UID         types.UID
	Annotations map[string]string
}

// Reasons a Decision carries. They are stable: users filter Events by them.
const (
	ReasonOtherNamespace  = "OtherNamespace"
	ReasonSecretIgnored   = "SecretIgnored"
	ReasonSecretExcluded  = "SecretExcluded"
	ReasonPaused          = "WorkloadPaused"
	ReasonNamedInReload   = "NamedInReloadAnnotation"
	ReasonSearchMatched   = "SearchMatched"
	ReasonAutoReferenced  = "AutoReferenced"
	ReasonNotReferenced   = "NotReferenced"
	ReasonNotAnnotated    = "NotAnnotated"
	ReasonInvalidNameList = "InvalidReloadAnnotation"
)

// Decision is the outcome of Decide.
type Decision struct {
	// Restart is true when the workload restarts for the Secret.
	Restart bool
	// Reason is one of the Reason constants.
	Reason string
	// Message is one human sentence.
	Message string
	// Problems are annotation values that did not parse (an invalid regular
	// expression in AnnotationSecretReload); the rest of the list still
	// counts. The controller reports them in a Warning Event.
	Problems error
}

// Check is one named rule: it decides (true) or passes (false).
type Check struct {
	Name string
	Fn   func(in Input) (Decision, bool)
}

// Input is one workload and one changed Secret.
type Input struct {
	Workload Workload
	Secret   Secret
}

// Checks is the chain Decide runs, in order. Skips come first (a Secret in
// another namespace, an ignored or excluded Secret), then the rules that
// select a workload, in Reloader's precedence: the reload list, search +
// match, auto.
var Checks = []Check{
	{"SecretInOtherNamespace", secretInOtherNamespace},
	{"SecretIgnored", secretIgnored},
	{"SecretExcluded", secretExcluded},
	{"NamedInReloadAnnotation", namedInReload},
	{"SearchMatched", searchMatched},
	{"AutoReferenced", autoReferenced},
}

// Vetoes run after a check of Checks selected the workload: the first that
// decides turns the restart into a skip (a paused Deployment or Rollout). A
// workload that no rule selects is never vetoed, so a veto reports only
// restarts that were skipped.
var Vetoes = []Check{
	{"WorkloadPaused", workloadPaused},
}

// Decide runs Checks, then, when one selected the workload, Vetoes; the
// first check that decides wins. When none does, the workload does not
// restart.
func Decide(in Input) Decision {
	return DecideWith(Checks, Vetoes, in)
}

// DecideWith runs chain over in, then vetoes when chain selected the
// workload.
func DecideWith(chain, vetoes []Check, in Input) Decision {
	var problems error
	for _, c := range chain {
		d, ok := c.Fn(in)
		if d.Problems != nil {
			problems = d.Problems
		}
		if !ok {
			continue
		}
		if d.Restart {
			for _, v := range vetoes {
				if vd, vetoed := v.Fn(in); vetoed {
					d = vd
					break
				}
			}
		}
		d.Problems = problems
		return d
	}
	a := selectionAnnotations(in.Workload)
	if a.has(AnnotationAuto) || a.has(AnnotationSecretAuto) || a.has(AnnotationSearch) || a.has(AnnotationSecretReload) {
		return Decision{Reason: ReasonNotReferenced, Problems: problems,
			Message: fmt.Sprintf("%s does not restart for Secret %s: its annotations do not select it", in.Workload, in.Secret.Name)}
	}
	return Decision{Reason: ReasonNotAnnotated, Problems: problems,
		Message: fmt.Sprintf("%s carries no reloader annotation", in.Workload)}
}

func secretInOtherNamespace(in Input) (Decision, bool) {
	if in.Workload.Namespace == in.Secret.Namespace {
		return Decision{}, false
	}
	return Decision{Reason: ReasonOtherNamespace,
		Message: fmt.Sprintf("%s is in namespace %s, not in the Secret's namespace %s", in.Workload, in.Workload.Namespace, in.Secret.Namespace)}, true
}

func secretIgnored(in Input) (Decision, bool) {
	if in.Secret.Annotations[AnnotationIgnore] != "true" {
		return Decision{}, false
	}
	return Decision{Reason: ReasonSecretIgnored,
		Message: fmt.Sprintf("Secret %s carries %s: \"true\"", in.Secret.Name, AnnotationIgnore)}, true
}

func secretExcluded(in Input) (Decision, bool) {
	v, ok := in.Workload.Annotations[AnnotationSecretExclude]
	if !ok || !ExactListContains(v, in.Secret.Name) {
		return Decision{}, false
	}
	return Decision{Reason: ReasonSecretExcluded,
		Message: fmt.Sprintf("%s lists Secret %s in %s", in.Workload, in.Secret.Name, AnnotationSecretExclude)}, true
}

func workloadPaused(in Input) (Decision, bool) {
	if !in.Workload.Paused {
		return Decision{}, false
	}
	return Decision{Reason: ReasonPaused,
		Message: fmt.Sprintf("%s is paused; not restarted for Secret %s", in.Workload, in.Secret.Name)}, true
}

func namedInReload(in Input) (Decision, bool) {
	v, ok := selectionAnnotations(in.Workload).get(AnnotationSecretReload)
	if !ok {
		return Decision{}, false
	}
	list, err := ParseNameList(v)
	d := Decision{Problems: err}
	if !list.Matches(in.Secret.Name) {
		return d, false
	}
	d.Restart, d.Reason = true, ReasonNamedInReload
	d.Message = fmt.Sprintf("%s names Secret %s in %s", in.Workload, in.Secret.Name, AnnotationSecretReload)
	return d, true
}

func searchMatched(in Input) (Decision, bool) {
	v, _ := selectionAnnotations(in.Workload).get(AnnotationSearch)
	if v != "true" || in.Secret.Annotations[AnnotationMatch] != "true" || !References(&in.Workload.Template.Spec, in.Secret.Name) {
		return Decision{}, false
	}
	return Decision{Restart: true, Reason: ReasonSearchMatched,
		Message: fmt.Sprintf("%s searches (%s) and uses Secret %s, which matches (%s)", in.Workload, AnnotationSearch, in.Secret.Name, AnnotationMatch)}, true
}

func autoReferenced(in Input) (Decision, bool) {
	a := selectionAnnotations(in.Workload)
	var key string
	for _, k := range []string{AnnotationAuto, AnnotationSecretAuto} {
		if v, _ := a.get(k); ParseBool(v) {
			key = k
			break
		}
	}
	if key == "" || !References(&in.Workload.Template.Spec, in.Secret.Name) {
		return Decision{}, false
	}
	return Decision{Restart: true, Reason: ReasonAutoReferenced,
		Message: fmt.Sprintf("%s carries %s and uses Secret %s", in.Workload, key, in.Secret.Name)}, true
}

// annotations is a set of annotations the selection rules read.
type annotations map[string]string

func (a annotations) get(k string) (string, bool) { v, ok := a[k]; return v, ok }
func (a annotations) has(k string) bool           { _, ok := a[k]; return ok }

// selectionAnnotations returns the annotations the selection rules read: the
// workload's own, or, when those carry none of reload, auto, secret auto
// and search, the pod template's (Reloader reads them there too).
func selectionAnnotations(w Workload) annotations {
	for _, k := range []string{AnnotationSecretReload, AnnotationAuto, AnnotationSecretAuto, AnnotationSearch} {
		if _, ok := w.Annotations[k]; ok {
			return w.Annotations
		}
	}
	return w.Template.Annotations
}

// ParseBool reads a boolean annotation value as Go's strconv.ParseBool does
// ("true", "True", "1", "t"...); anything else is false.
func ParseBool(v string) bool {
	switch strings.TrimSpace(v) {
	case "1", "t", "T", "true", "TRUE", "True":
		return true
	}
	return false
}
