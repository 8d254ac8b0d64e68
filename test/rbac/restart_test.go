package rbac

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/keyferry/keyferry/internal/provider"
	"github.com/keyferry/keyferry/internal/provider/fake"
	restartpolicy "github.com/keyferry/keyferry/internal/restart"
	"github.com/keyferry/keyferry/internal/testing/testenv"
)

// restartWorkloads.enabled: the operator restarts a Deployment whose Secret
// rotated, as the chart's ServiceAccount, with the permissions the value
// adds (get, list and patch on Deployments, StatefulSets and DaemonSets).
func TestRestartWorkloadsRestartsAsTheChartsServiceAccount(t *testing.T) {
	const (
		release = "restarts"
		sa      = "restarts-keyferry"
		ns      = "rbac-restarts"
	)
	ensureNamespace(t, ns)
	objs := install(t, release, map[string]any{"restartWorkloads": map[string]any{"enabled": true, "debounce": "1s"}})
	for _, verb := range []string{"get", "list", "patch"} {
		if !canI(t, sa, verb, "apps", "deployments", ns) || !canI(t, sa, verb, "argoproj.io", "rollouts", ns) {
			t.Fatalf("the ServiceAccount may not %s Deployments or Rollouts", verb)
		}
	}
	if canI(t, sa, "update", "apps", "deployments", ns) || canI(t, sa, "delete", "apps", "deployments", ns) {
		t.Fatal("the ServiceAccount may do more than get, list and patch Deployments")
	}

	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", Annotations: map[string]string{restartpolicy.AnnotationAuto: "true"}},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1",
					EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "app"}}}}}}},
			},
		},
	}
	if err := env.Client.Create(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	env.Apply(t, ns, fakeApp("v1"))
	reg := provider.NewRegistry()
	reg.Register("fake", fake.New())
	op := startOperator(t, serviceAccountConfig(t, releaseNamespace, sa), objs, reg)
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"key": "v1"}))

	env.Apply(t, ns, fakeApp("v2"))
	env.ForceSync(t, ns, "app")
	env.WaitSecret(t, ns, "app", testenv.HasData(map[string]string{"key": "v2"}))
	testenv.Eventually(t, "Deployment web restarted", func(ctx context.Context) (bool, string) {
		var got appsv1.Deployment
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
			return false, err.Error()
		}
		v := got.Spec.Template.Annotations[restartpolicy.AnnotationRestartedAt]
		return v != "", fmt.Sprintf("generation %d, no %s", got.Generation, restartpolicy.AnnotationRestartedAt)
	})
	waitEvent(t, ns, "web")
	op.assertNothingForbidden(t)
}
