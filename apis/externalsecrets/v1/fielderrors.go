package v1

import "fmt"

// FieldErrors reports the first field of a store's spec that decoded (the
// types in this package never fail to decode) but holds a value keyferry
// cannot use, naming the field: spec.refreshInterval or
// spec.provider.webhook.timeout. nil means every such field is valid.
func (s *SecretStoreSpec) FieldErrors() error {
	if _, err := s.RefreshInterval.Duration(); err != nil {
		return fmt.Errorf("spec.refreshInterval: %w", err)
	}
	if s.Provider != nil && s.Provider.Webhook != nil {
		if err := s.Provider.Webhook.Timeout.Err(); err != nil {
			return fmt.Errorf("spec.provider.webhook.timeout: %w", err)
		}
	}
	return nil
}

// FieldErrors reports the first field of an ExternalSecret's spec that
// decoded but holds a value keyferry cannot use, naming the field.
func (s *ExternalSecretSpec) FieldErrors() error {
	return s.fieldErrors("spec.")
}

func (s *ExternalSecretSpec) fieldErrors(prefix string) error {
	if err := s.RefreshInterval.Err(); err != nil {
		return fmt.Errorf("%srefreshInterval: %w", prefix, err)
	}
	return nil
}

// FieldErrors reports the first field of a ClusterExternalSecret's spec
// that decoded but holds a value keyferry cannot use, naming the field.
func (s *ClusterExternalSecretSpec) FieldErrors() error {
	if err := s.RefreshInterval.Err(); err != nil {
		return fmt.Errorf("spec.refreshTime: %w", err)
	}
	return s.ExternalSecretSpec.fieldErrors("spec.externalSecretSpec.")
}
