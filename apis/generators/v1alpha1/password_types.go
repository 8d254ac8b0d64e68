package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PasswordSpec controls the Password generator: internal/generator.Password
// gives each field its meaning.
type PasswordSpec struct {
	// Length of the password.
	// +kubebuilder:default=24
	Length int `json:"length"`
	// Digits is the number of digits in the password; unset means 25 % of
	// the length.
	// +optional
	Digits *int `json:"digits,omitempty"`
	// Symbols is the number of symbol characters in the password; unset
	// means 25 % of the length.
	// +optional
	Symbols *int `json:"symbols,omitempty"`
	// SymbolCharacters are the symbols to choose from; unset means
	// ~!@#$%^&*()_+`-={}|[]\:"<>?,./
	// +optional
	SymbolCharacters *string `json:"symbolCharacters,omitempty"`
	// NoUpper leaves out upper-case letters.
	// +kubebuilder:default=false
	NoUpper bool `json:"noUpper"`
	// AllowRepeat lets a character appear more than once.
	// +kubebuilder:default=false
	AllowRepeat bool `json:"allowRepeat"`
	// Encoding of the generated password: raw (default), base64,
	// base64url, base32 or hex.
	// +kubebuilder:default="raw"
	// +kubebuilder:validation:Enum=base64;base64url;base32;hex;raw
	// +optional
	Encoding *string `json:"encoding,omitempty"`
	// SecretKeys are the keys that each get a password; unset means
	// "password".
	// +kubebuilder:validation:MinItems=1
	// +optional
	SecretKeys []string `json:"secretKeys,omitempty"`
}

// Password generates a random password.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type Password struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PasswordSpec    `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// PasswordList is a list of Passwords.
//
// +kubebuilder:object:root=true
type PasswordList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Password `json:"items"`
}

// UUIDSpec has no fields: a UUID generator makes a random (version 4) UUID.
type UUIDSpec struct{}

// UUID generates a random UUID.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type UUID struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   UUIDSpec        `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// UUIDList is a list of UUIDs.
//
// +kubebuilder:object:root=true
type UUIDList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []UUID `json:"items"`
}

// FakeSpec is the fixed output of a Fake generator.
type FakeSpec struct {
	// Controller is ESO's controller class of the generator.
	// +optional
	Controller string `json:"controller,omitempty"`
	// Data is returned as the generator's output.
	// +optional
	Data map[string]string `json:"data,omitempty"`
}

// Fake returns fixed data, for tests.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type Fake struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   FakeSpec        `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// FakeList is a list of Fakes.
//
// +kubebuilder:object:root=true
type FakeList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Fake `json:"items"`
}

// SSHKeySpec controls the SSHKey generator.
type SSHKeySpec struct {
	// KeyType is rsa (default), ecdsa or ed25519.
	// +kubebuilder:default="rsa"
	// +kubebuilder:validation:Enum=rsa;ecdsa;ed25519
	// +optional
	KeyType string `json:"keyType,omitempty"`
	// KeySize is the key size in bits (rsa, ecdsa).
	// +kubebuilder:validation:Minimum=256
	// +kubebuilder:validation:Maximum=8192
	// +optional
	KeySize *int `json:"keySize,omitempty"`
	// Comment is added to the public key.
	// +optional
	Comment string `json:"comment,omitempty"`
}

// SSHKey generates an SSH key pair.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type SSHKey struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SSHKeySpec      `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// SSHKeyList is a list of SSHKeys.
//
// +kubebuilder:object:root=true
type SSHKeyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SSHKey `json:"items"`
}

// MFASecretRef names the Secret key holding an MFA seed.
type MFASecretRef struct {
	// Name of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	Name string `json:"name,omitempty"`
	// Namespace of the Secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern:=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	Namespace *string `json:"namespace,omitempty"`
	// Key within the Secret's data.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern:=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// MFASpec controls the MFA (TOTP) generator.
type MFASpec struct {
	// Secret holds the TOTP seed.
	Secret MFASecretRef `json:"secret"`
	// Length of the code.
	// +optional
	Length int `json:"length,omitempty"`
	// TimePeriod of a code, in seconds.
	// +optional
	TimePeriod int `json:"timePeriod,omitempty"`
	// Algorithm of the HMAC.
	// +optional
	Algorithm string `json:"algorithm,omitempty"`
	// When is the time the code is computed for; unset means now.
	// +optional
	When *metav1.Time `json:"when,omitempty"`
}

// MFA generates a TOTP code.
//
// +kubebuilder:object:root=true
// +kubebuilder:storageversion
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,categories={external-secrets,external-secrets-generators}
type MFA struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   MFASpec         `json:"spec,omitempty"`
	Status GeneratorStatus `json:"status,omitempty"`
}

// MFAList is a list of MFAs.
//
// +kubebuilder:object:root=true
type MFAList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MFA `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Password{}, &PasswordList{}, &UUID{}, &UUIDList{}, &Fake{}, &FakeList{},
		&SSHKey{}, &SSHKeyList{}, &MFA{}, &MFAList{})
}
