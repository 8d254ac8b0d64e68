package azurekv

import (
	"fmt"
	"net/url"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// specOf returns the store's azurekv configuration after checking it.
func specOf(store provider.Store) (*esv1.AzureKVProvider, error) {
	if store.Spec == nil || store.Spec.Provider == nil || store.Spec.Provider.AzureKV == nil {
		return nil, fmt.Errorf("%w: spec.provider.azurekv is not set", provider.ErrInvalidConfig)
	}
	spec := store.Spec.Provider.AzureKV
	for _, check := range specChecks {
		if msg := check(store, spec); msg != "" {
			return nil, fmt.Errorf("%w: spec.provider.azurekv: %s", provider.ErrInvalidConfig, msg)
		}
	}
	// The one rule of every provider: a SecretStore's references stay in
	// its namespace.
	if err := provider.ReferencesStayInNamespace(store); err != nil {
		return nil, err
	}
	return spec, nil
}

// specCheck returns what is wrong with the configuration, or "".
type specCheck func(store provider.Store, spec *esv1.AzureKVProvider) string

// specChecks run in order; the first failure is reported.
var specChecks = []specCheck{
	vaultURLIsHTTPS,
	authTypeIsKnown,
	environmentIsSupported,
	customCloudHasAuthority,
	servicePrincipalHasCredentials,
	servicePrincipalHasTenant,
}

func authType(spec *esv1.AzureKVProvider) esv1.AzureAuthType {
	if spec.AuthType == nil || *spec.AuthType == "" {
		return esv1.AzureServicePrincipal
	}
	return *spec.AuthType
}

func vaultURLIsHTTPS(_ provider.Store, spec *esv1.AzureKVProvider) string {
	if spec.VaultURL == nil || *spec.VaultURL == "" {
		return "vaultUrl is required"
	}
	u, err := url.Parse(*spec.VaultURL)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("vaultUrl %q is not a URL such as https://my-vault.vault.azure.net", *spec.VaultURL)
	}
	if u.Scheme != "https" {
		return fmt.Sprintf("vaultUrl %q must use https (Azure SDKs never send tokens over plain HTTP)", *spec.VaultURL)
	}
	return ""
}

func authTypeIsKnown(_ provider.Store, spec *esv1.AzureKVProvider) string {
	switch authType(spec) {
	case esv1.AzureServicePrincipal, esv1.AzureManagedIdentity, esv1.AzureWorkloadIdentity:
		return ""
	default:
		return fmt.Sprintf("authType %q is not ServicePrincipal, ManagedIdentity or WorkloadIdentity", *spec.AuthType)
	}
}

func environmentIsSupported(_ provider.Store, spec *esv1.AzureKVProvider) string {
	switch spec.EnvironmentType {
	case "", esv1.AzureEnvironmentPublicCloud, esv1.AzureEnvironmentUSGovernmentCloud, esv1.AzureEnvironmentChinaCloud:
		return ""
	case esv1.AzureEnvironmentGermanCloud:
		return "environmentType GermanCloud: Microsoft Cloud Deutschland was closed in 2021; use PublicCloud, or AzureStackCloud with customCloudConfig"
	case esv1.AzureEnvironmentAzureStackCloud:
		if spec.CustomCloudConfig == nil {
			return "environmentType AzureStackCloud needs customCloudConfig"
		}
		return ""
	default:
		return fmt.Sprintf("environmentType %q is not PublicCloud, USGovernmentCloud, ChinaCloud or AzureStackCloud", spec.EnvironmentType)
	}
}

func customCloudHasAuthority(_ provider.Store, spec *esv1.AzureKVProvider) string {
	c := spec.CustomCloudConfig
	if c == nil {
		return ""
	}
	u, err := url.Parse(c.ActiveDirectoryEndpoint)
	if c.ActiveDirectoryEndpoint == "" || err != nil || u.Host == "" || u.Scheme != "https" {
		return fmt.Sprintf("customCloudConfig.activeDirectoryEndpoint %q must be an https URL such as https://login.microsoftonline.com/", c.ActiveDirectoryEndpoint)
	}
	if c.KeyVaultEndpoint != "" {
		if u, err := url.Parse(c.KeyVaultEndpoint); err != nil || u.Host == "" {
			return fmt.Sprintf("customCloudConfig.keyVaultEndpoint %q is not a URL", c.KeyVaultEndpoint)
		}
	}
	return ""
}

func servicePrincipalHasCredentials(_ provider.Store, spec *esv1.AzureKVProvider) string {
	if authType(spec) != esv1.AzureServicePrincipal {
		return ""
	}
	a := spec.AuthSecretRef
	switch {
	case a == nil:
		return "authType ServicePrincipal needs authSecretRef with clientId and clientSecret or clientCertificate"
	case a.ClientID == nil:
		return "authType ServicePrincipal needs authSecretRef.clientId"
	case a.ClientSecret == nil && a.ClientCertificate == nil:
		return "authType ServicePrincipal needs authSecretRef.clientSecret or authSecretRef.clientCertificate"
	case a.ClientSecret != nil && a.ClientCertificate != nil:
		return "authSecretRef sets both clientSecret and clientCertificate: set one"
	}
	return ""
}

func servicePrincipalHasTenant(_ provider.Store, spec *esv1.AzureKVProvider) string {
	if authType(spec) != esv1.AzureServicePrincipal {
		return ""
	}
	if (spec.TenantID == nil || *spec.TenantID == "") && (spec.AuthSecretRef == nil || spec.AuthSecretRef.TenantID == nil) {
		return "authType ServicePrincipal needs tenantId (or authSecretRef.tenantId)"
	}
	return ""
}
