package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
)

// WebhookSecretKeySelector names a key of a Secret in the generator's
// namespace.
type WebhookSecretKeySelector struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// WebhookSecret makes a Secret's data available to the URL, headers and
// body templates under Name.
type WebhookSecret struct {
	Name      string                   `json:"name"`
	SecretRef WebhookSecretKeySelector `json:"secretRef"`
}

// WebhookAuth is the authentication of the call: exactly one method.
// +kubebuilder:validation:MinProperties=1
// +kubebuilder:validation:MaxProperties=1
type WebhookAuth struct {
	// NTLM credentials.
	// +optional
	NTLM *esv1.NTLMAuth `json:"ntlm,omitempty"`
}

// WebhookSpec controls the Webhook generator: one HTTP call whose answer is
// the generated value, with the webhook provider's fields.
type WebhookSpec struct {
	// Method of the request (default GET).
	// +optional
	Method string `json:"method,omitempty"`
	// URL to call; a template.
	URL string `json:"url"`
	// Headers of the request; templates.
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// Auth of the request.
	// +optional
	Auth *WebhookAuth `json:"auth,omitempty"`
	// Body of the request; a template.
	// +optional
	Body string `json:"body,omitempty"`
	// Timeout of the request, a duration.
	// +optional
	Timeout *esv1.Duration `json:"timeout,omitempty"`
	// Result selects the value in the response.
	Result esv1.WebhookResult `json:"result"`
	// Secrets are available to the templates.
	// +optional
	Secrets []WebhookSecret `json:"secrets,omitempty"`
	// CABundle is a PEM bundle of CAs to trust.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// CAProvider points at a CA bundle in a Secret or ConfigMap.
	// +optional
	CAProvider *esv1.CAProvider `json:"caProvider,omitempty"`
}

// Webhook generates a value with an HTTP call.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type Webhook struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WebhookSpec     `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// WebhookList is a list of Webhooks.
//
// +kubebuilder:object:root=true
type WebhookList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Webhook `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Webhook{}, &WebhookList{})
}
