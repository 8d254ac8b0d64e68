package restart

import (
	"encoding/json"
	"fmt"
	"time"
)

// RestartedAt is the value of AnnotationRestartedAt for a restart at now
// (RFC3339, UTC). previous is the value the pod template carries; when now
// formats to the same second, the next second is used, so that the patch
// always changes the template and always starts a rollout.
func RestartedAt(now time.Time, previous string) string {
	v := now.UTC().Format(time.RFC3339)
	if v == previous {
		v = now.UTC().Add(time.Second).Format(time.RFC3339)
	}
	return v
}

// RestartPatch is the JSON merge patch that sets the pod-template
// annotation AnnotationRestartedAt to restartedAt. It is the same for
// Deployments, StatefulSets and DaemonSets (spec.template.metadata) and
// touches nothing else.
func RestartPatch(restartedAt string) ([]byte, error) {
	p := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationRestartedAt: restartedAt},
	}}}}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("encoding restart patch: %w", err)
	}
	return b, nil
}
