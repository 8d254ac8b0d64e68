package v1

// WebhookProvider fetches values from an HTTP service.
type WebhookProvider struct {
	// Method of the request; defaults to GET.
	// +optional
	Method string `json:"method,omitempty"`
	// URL template; `.remoteRef.key`, `.remoteRef.property`,
	// `.remoteRef.version` and `.secrets.NAME.KEY` are available.
	URL string `json:"url"`
	// Headers templates.
	// +optional
	Headers map[string]string `json:"headers,omitempty"`
	// Auth configures NTLM (accepted, not supported by keyferry).
	// +optional
	Auth *WebhookAuth `json:"auth,omitempty"`
	// Body template.
	// +optional
	Body string `json:"body,omitempty"`
	// Timeout of one request, such as 5s.
	// +optional
	Timeout *Duration `json:"timeout,omitempty"`
	// Result says how to read the value out of the response.
	// +optional
	Result WebhookResult `json:"result,omitempty"`
	// Secrets whose values the templates can use.
	// +optional
	Secrets []WebhookSecret `json:"secrets,omitempty"`
	// CABundle verifies the server's certificate.
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// CAProvider points at a CA bundle.
	// +optional
	CAProvider *CAProvider `json:"caProvider,omitempty"`

	// ClientTLS presents a client certificate (mutual TLS); a keyferry extension.
	// +optional
	ClientTLS *WebhookClientTLS `json:"clientTLS,omitempty"`
	// SPIFFE authenticates with an X.509 SVID and authorises the server by its
	// SPIFFE ID; a keyferry extension.
	// +optional
	SPIFFE *WebhookSPIFFE `json:"spiffe,omitempty"`
}

// WebhookAuth is accepted for compatibility.
type WebhookAuth struct {
	// +optional
	NTLM *NTLMAuth `json:"ntlm,omitempty"`
}

// NTLMAuth holds NTLM credentials.
type NTLMAuth struct {
	UserName SecretKeySelector `json:"usernameSecret"`
	Password SecretKeySelector `json:"passwordSecret"`
}

// WebhookResult selects the value in the response.
type WebhookResult struct {
	// JSONPath into the JSON response; empty takes the whole body.
	// +optional
	JSONPath string `json:"jsonPath,omitempty"`
}

// WebhookSecret makes a Secret's data available to templates under Name.
type WebhookSecret struct {
	Name      string            `json:"name"`
	SecretRef SecretKeySelector `json:"secretRef"`
}

// WebhookClientTLS is a client certificate and key kept in Secrets.
type WebhookClientTLS struct {
	CertSecretRef SecretKeySelector `json:"certSecretRef"`
	KeySecretRef  SecretKeySelector `json:"keySecretRef"`
}

// WebhookSPIFFE configures SPIFFE mTLS. The SVID comes from the Workload API
// socket or from files; the server must present the given SPIFFE ID, or any
// ID in the given trust domain.
type WebhookSPIFFE struct {
	// WorkloadAPISocket is the Workload API address, such as
	// unix:///run/spire/sockets/agent.sock.
	// +optional
	WorkloadAPISocket string `json:"workloadAPISocket,omitempty"`
	// Files holds the SVID and bundle as PEM files on the operator's pod.
	// +optional
	Files *SPIFFEFiles `json:"files,omitempty"`
	// ServerID is the SPIFFE ID the server must present.
	// +optional
	ServerID string `json:"serverID,omitempty"`
	// TrustDomain authorises any server in this trust domain.
	// +optional
	TrustDomain string `json:"trustDomain,omitempty"`
}

// SPIFFEFiles are the PEM files of an X.509 SVID and trust bundle.
type SPIFFEFiles struct {
	CertPath   string `json:"certPath"`
	KeyPath    string `json:"keyPath"`
	BundlePath string `json:"bundlePath"`
}
