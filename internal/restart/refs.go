package restart

import (
	corev1 "k8s.io/api/core/v1"
)

// References reports whether a pod spec uses the Secret named name the way
// Reloader's auto and search modes count: an environment variable from one
// of its keys (env[].valueFrom.secretKeyRef), all its keys as environment
// variables (envFrom[].secretRef), or a volume (a secret volume or a
// projected volume with a secret source) that a container mounts. Containers
// and init containers count; ephemeral containers and imagePullSecrets do
// not.
func References(spec *corev1.PodSpec, name string) bool {
	containers := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		containers = append(containers, &spec.InitContainers[i])
	}
	for i := range spec.Containers {
		containers = append(containers, &spec.Containers[i])
	}
	for _, c := range containers {
		if usesInEnv(c, name) {
			return true
		}
	}
	for i := range spec.Volumes {
		if volumeUsesSecret(&spec.Volumes[i], name) && mounted(containers, spec.Volumes[i].Name) {
			return true
		}
	}
	return false
}

func usesInEnv(c *corev1.Container, name string) bool {
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name == name {
			return true
		}
	}
	for _, e := range c.EnvFrom {
		if e.SecretRef != nil && e.SecretRef.Name == name {
			return true
		}
	}
	return false
}

func volumeUsesSecret(v *corev1.Volume, name string) bool {
	if v.Secret != nil && v.Secret.SecretName == name {
		return true
	}
	if v.Projected != nil {
		for _, s := range v.Projected.Sources {
			if s.Secret != nil && s.Secret.Name == name {
				return true
			}
		}
	}
	return false
}

func mounted(containers []*corev1.Container, volume string) bool {
	for _, c := range containers {
		for _, m := range c.VolumeMounts {
			if m.Name == volume {
				return true
			}
		}
	}
	return false
}
