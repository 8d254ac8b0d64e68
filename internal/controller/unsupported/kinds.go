// Package unsupported reports the kinds keyferry installs and serves but does
// not implement yet. Every CRD of External Secrets Operator is installed, so
// that a repository written for ESO applies whole instead of failing with
// "no matches for kind"; an object of a kind keyferry does not act on yet gets
// the condition Ready=False with reason Unsupported, a message naming the
// kind and pointing at docs/status.md, and one Warning Event. Nothing else is
// touched: no Secret, no store, no provider, no finalizer.
//
// Kinds is the one list of such kinds. When keyferry implements a kind, its
// entry is removed here and its own controller takes over. A kind keyferry
// implements without a controller of its own (ESO gives generators no
// status: Password, UUID, Fake and SSHKey, which ExternalSecrets run) moves to
// Implemented: its objects only lose the Unsupported condition an earlier
// keyferry wrote, and get no condition otherwise. A ClusterGenerator of one
// of those kinds is treated the same way.
//
// Like the other front-ends, the controllers honour the operator's filters:
// with --namespace, only that namespace's objects are seen and the
// cluster-scoped kinds are left alone; with controller classes, an object
// that belongs to another controller (a PushSecret whose named stores all
// are of another class, a generator whose spec.controller names another
// class) gets no condition and no Event.
package unsupported

import (
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	genv1alpha1 "github.com/keyferry/keyferry/apis/generators/v1alpha1"
)

// Kind is a kind keyferry serves but does not implement yet.
type Kind struct {
	schema.GroupVersionKind
	// Namespaced is false for cluster-scoped kinds, which a keyferry
	// serving one namespace leaves alone.
	Namespaced bool
	// Consequence says, in the condition's message, what does not happen.
	Consequence string
	// Implemented marks a kind of Implemented(): its objects' Unsupported
	// condition is removed, none is written.
	Implemented bool
}

const nothingGenerated = "no ExternalSecret or PushSecret can use it"

// Kinds returns every kind keyferry installs and serves but does not
// implement yet. GeneratorState is not among them: an operator writes it,
// users do not.
func Kinds() []Kind {
	gen := func(kind string) Kind {
		return Kind{GroupVersionKind: genv1alpha1.GroupVersion.WithKind(kind), Namespaced: true, Consequence: nothingGenerated}
	}
	clusterGenerator := gen("ClusterGenerator")
	clusterGenerator.Namespaced = false
	return []Kind{
		gen("BeyondtrustWorkloadCredentialsDynamicSecret"),
		gen("CloudsmithAccessToken"),
		gen("GithubAccessToken"),
		gen("GitlabDeployToken"),
		gen("Grafana"),
		gen("MFA"),
		gen("QuayAccessToken"),
		clusterGenerator,
	}
}

// Implemented returns the kinds keyferry once reported Unsupported and now
// implements with no controller of their own: the generators an
// ExternalSecret runs (docs/generators.md). ESO's generators have no status,
// so nothing reports on their objects; the controller of each kind only
// removes the Unsupported condition an earlier keyferry wrote.
func Implemented() []Kind {
	gen := func(kind string) Kind {
		return Kind{GroupVersionKind: genv1alpha1.GroupVersion.WithKind(kind), Namespaced: true, Implemented: true}
	}
	return []Kind{gen("Fake"), gen("Password"), gen("SSHKey"), gen("UUID"), gen("ECRAuthorizationToken"), gen("STSSessionToken"), gen("VaultDynamicSecret"), gen("Webhook"), gen("ACRAccessToken"), gen("GCRAccessToken")}
}

// implementedGenerator says whether obj is a ClusterGenerator of a kind
// keyferry runs (spec.kind of Implemented: Password, UUID, Fake, SSHKey,
// ECRAuthorizationToken, STSSessionToken, VaultDynamicSecret, Webhook,
// ACRAccessToken, GCRAccessToken).
func implementedGenerator(obj *unstructured.Unstructured) bool {
	if obj.GetKind() != "ClusterGenerator" {
		return false
	}
	kind, _, _ := unstructured.NestedString(obj.Object, "spec", "kind")
	for _, k := range Implemented() {
		if k.Kind == kind {
			return true
		}
	}
	return false
}
