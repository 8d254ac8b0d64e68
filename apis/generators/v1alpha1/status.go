package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// GeneratorConditionType is the type of a generator condition.
type GeneratorConditionType string

// GeneratorReady says whether keyferry can use the generator.
const GeneratorReady GeneratorConditionType = "Ready"

// GeneratorCondition is one condition of a generator.
type GeneratorCondition struct {
	Type   GeneratorConditionType `json:"type"`
	Status corev1.ConditionStatus `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime esv1.Time `json:"lastTransitionTime,omitempty"`
}

// GeneratorStatus is keyferry's status of a generator (an addition to ESO's
// API, whose generators have none).
type GeneratorStatus struct {
	// +optional
	Conditions []GeneratorCondition `json:"conditions,omitempty"`
}

// GeneratorStateCondition is one condition of a GeneratorState, as in ESO.
type GeneratorStateCondition struct {
	Type   string                 `json:"type"`
	Status corev1.ConditionStatus `json:"status"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
}
