package v1

// FileProvider reads secrets from files under a directory on the operator's
// pod (a keyferry extension). Each file is a remote key named by its path
// relative to Path; its content is the value.
type FileProvider struct {
	// Path is the root directory, such as /mnt/secrets.
	// +kubebuilder:validation:MinLength=1
	Path string `json:"path"`
	// PollInterval is the fallback re-read interval besides the filesystem
	// watch, such as 1m; default 1m.
	// +optional
	PollInterval string `json:"pollInterval,omitempty"`
}
