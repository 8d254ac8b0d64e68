package v1

// FakeProvider serves the values listed inline; for tests and demos.
type FakeProvider struct {
	Data []FakeProviderData `json:"data"`
	// ValidationResult is accepted for compatibility and ignored.
	// +optional
	ValidationResult *int `json:"validationResult,omitempty"`
}

// FakeProviderData is one inline value.
type FakeProviderData struct {
	Key   string `json:"key"`
	Value string `json:"value"`
	// +optional
	Version string `json:"version,omitempty"`
}
