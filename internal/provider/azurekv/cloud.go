package azurekv

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	esv1 "github.com/keyferry/keyferry/apis/externalsecrets/v1"
	"github.com/keyferry/keyferry/internal/provider"
)

// cloudSettings are the endpoints keyferry uses in one Azure cloud.
type cloudSettings struct {
	config cloud.Configuration
	// disableInstanceDiscovery is set for authorities Entra ID's instance
	// discovery does not know (custom clouds, test servers).
	disableInstanceDiscovery bool
	// vaultResource is Key Vault's resource (token audience) in this cloud,
	// such as https://vault.azure.net.
	vaultResource string
}

// vaultResources are Key Vault's resources in the clouds azcore knows.
var vaultResources = map[esv1.AzureEnvironmentType]string{
	esv1.AzureEnvironmentPublicCloud:       "https://vault.azure.net",
	esv1.AzureEnvironmentUSGovernmentCloud: "https://vault.usgovcloudapi.net",
	esv1.AzureEnvironmentChinaCloud:        "https://vault.azure.cn",
}

// cloudFor returns the endpoints of the store's environmentType and
// customCloudConfig; authorityOverride (Options.AuthorityHost) replaces the
// authority host.
func cloudFor(env esv1.AzureEnvironmentType, custom *esv1.AzureCustomCloudConfig, vaultURL, authorityOverride string) (cloudSettings, error) {
	if env == "" {
		env = esv1.AzureEnvironmentPublicCloud
	}
	var s cloudSettings
	switch env {
	case esv1.AzureEnvironmentPublicCloud:
		s.config = cloud.AzurePublic
	case esv1.AzureEnvironmentUSGovernmentCloud:
		s.config = cloud.AzureGovernment
	case esv1.AzureEnvironmentChinaCloud:
		s.config = cloud.AzureChina
	case esv1.AzureEnvironmentAzureStackCloud:
		if custom == nil {
			return s, fmt.Errorf("%w: environmentType AzureStackCloud needs customCloudConfig", provider.ErrInvalidConfig)
		}
		s.config = cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{}}
	case esv1.AzureEnvironmentGermanCloud:
		return s, fmt.Errorf("%w: environmentType GermanCloud: Microsoft Cloud Deutschland was closed in 2021", provider.ErrInvalidConfig)
	default:
		return s, fmt.Errorf("%w: unknown environmentType %q", provider.ErrInvalidConfig, env)
	}
	s.vaultResource = vaultResources[env]
	if custom != nil {
		services := map[cloud.ServiceName]cloud.ServiceConfiguration{}
		for k, v := range s.config.Services {
			services[k] = v
		}
		if custom.ResourceManagerEndpoint != "" {
			services[cloud.ResourceManager] = cloud.ServiceConfiguration{Audience: custom.ResourceManagerEndpoint, Endpoint: custom.ResourceManagerEndpoint}
		}
		s.config = cloud.Configuration{ActiveDirectoryAuthorityHost: withSlash(custom.ActiveDirectoryEndpoint), Services: services}
		s.disableInstanceDiscovery = true
		switch {
		case custom.KeyVaultEndpoint != "":
			s.vaultResource = strings.TrimSuffix(custom.KeyVaultEndpoint, "/")
		case custom.KeyVaultDNSSuffix != "":
			s.vaultResource = "https://" + strings.TrimPrefix(custom.KeyVaultDNSSuffix, ".")
		}
	}
	if s.vaultResource == "" {
		// A custom cloud without a Key Vault endpoint: the vault's own domain
		// (https://myvault.vault.local.azurestack.external -> https://vault.local.azurestack.external).
		if u, err := url.Parse(vaultURL); err == nil {
			if _, rest, ok := strings.Cut(u.Hostname(), "."); ok {
				s.vaultResource = "https://" + rest
			}
		}
	}
	if authorityOverride != "" {
		s.config.ActiveDirectoryAuthorityHost = withSlash(authorityOverride)
		s.disableInstanceDiscovery = true
	}
	return s, nil
}

func withSlash(u string) string {
	if strings.HasSuffix(u, "/") {
		return u
	}
	return u + "/"
}

// CloudFromName maps the cloudName parameter of a SecretProviderClass
// (provider: azure) to an environment type. Names are those of the Azure
// Key Vault provider for the Secrets Store CSI driver, case-insensitive;
// empty means the public cloud.
func CloudFromName(cloudName string) (esv1.AzureEnvironmentType, error) {
	switch strings.ToLower(strings.TrimSpace(cloudName)) {
	case "", "azurepubliccloud", "azurecloud", "publiccloud":
		return esv1.AzureEnvironmentPublicCloud, nil
	case "azureusgovernmentcloud", "azureusgovernment", "usgovernmentcloud":
		return esv1.AzureEnvironmentUSGovernmentCloud, nil
	case "azurechinacloud", "chinacloud":
		return esv1.AzureEnvironmentChinaCloud, nil
	case "azuregermancloud", "germancloud":
		return "", fmt.Errorf("%w: cloudName %q: Microsoft Cloud Deutschland was closed in 2021", provider.ErrInvalidConfig, cloudName)
	case "azurestackcloud":
		return "", fmt.Errorf("%w: cloudName %q is not supported: Azure Stack needs custom endpoints (use an azurekv SecretStore with customCloudConfig)", provider.ErrNotSupported, cloudName)
	default:
		return "", fmt.Errorf("%w: unknown cloudName %q (AzurePublicCloud, AzureUSGovernmentCloud or AzureChinaCloud)", provider.ErrInvalidConfig, cloudName)
	}
}

// vaultDNSSuffixes are the domains of vaults in each cloud.
var vaultDNSSuffixes = map[esv1.AzureEnvironmentType]string{
	esv1.AzureEnvironmentPublicCloud:       "vault.azure.net",
	esv1.AzureEnvironmentUSGovernmentCloud: "vault.usgovcloudapi.net",
	esv1.AzureEnvironmentChinaCloud:        "vault.azure.cn",
}

var vaultNamePattern = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$`)

// VaultURLFromName returns the URL of the vault named name in a cloud (the
// keyvaultName parameter of a SecretProviderClass), such as
// https://name.vault.azure.net/.
func VaultURLFromName(name string, env esv1.AzureEnvironmentType) (string, error) {
	if env == "" {
		env = esv1.AzureEnvironmentPublicCloud
	}
	if !vaultNamePattern.MatchString(name) {
		return "", fmt.Errorf("%w: %q is not a Key Vault name (3-24 letters, digits and dashes, starting with a letter)", provider.ErrInvalidConfig, name)
	}
	suffix, ok := vaultDNSSuffixes[env]
	if !ok {
		return "", fmt.Errorf("%w: no Key Vault domain is known for environment %q", provider.ErrInvalidConfig, env)
	}
	return "https://" + strings.ToLower(name) + "." + suffix + "/", nil
}
