package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// OfferType says what an offer sells.
// +kubebuilder:validation:Enum=inference;fine-tuning;http;agent;skill
type OfferType string

// Offer types obol renders slices for. The other enum values are kept so offers written by the
// predecessor still decode; obol refuses to sell them.
const (
	OfferTypeHTTP      OfferType = "http"
	OfferTypeInference OfferType = "inference"
)

// ServiceOffer is one thing a seller sells behind an x402 payment gate.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=so
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Model",type=string,JSONPath=`.spec.model.name`
// +kubebuilder:printcolumn:name="Price",type=string,JSONPath=`.spec.payment.price.perRequest`
// +kubebuilder:printcolumn:name="Network",type=string,JSONPath=`.spec.payment.network`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ServiceOffer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   ServiceOfferSpec   `json:"spec"`
	Status ServiceOfferStatus `json:"status,omitempty"`
}

// ServiceOfferSpec is what is sold, from where, and for how much.
type ServiceOfferSpec struct {
	// Type is what the offer sells.
	// +kubebuilder:default=http
	// +optional
	Type OfferType `json:"type,omitempty"`

	// Model is the model an inference offer serves.
	// +optional
	Model *ModelSpec `json:"model,omitempty"`

	// Upstream is where paid requests go.
	// +optional
	Upstream *UpstreamSpec `json:"upstream,omitempty"`

	// Payment is the x402 payment the gateway asks for.
	Payment PaymentSpec `json:"payment"`

	// Path is the public path prefix of the offer; default /services/<name>.
	// +kubebuilder:validation:Pattern=`^/[a-zA-Z0-9/_.-]*$`
	// +optional
	Path string `json:"path,omitempty"`

	// Registration describes the offer for ERC-8004 / OASF registries.
	// +optional
	Registration *RegistrationSpec `json:"registration,omitempty"`

	// Provenance records where a model came from (framework, metric, hashes, ...).
	// +optional
	Provenance map[string]string `json:"provenance,omitempty"`
}

// ModelSpec names the model of an inference offer.
type ModelSpec struct {
	// Name is the upstream's model id, e.g. qwen3:8b.
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// Runtime is the serving runtime.
	// +kubebuilder:validation:Enum=ollama;vllm;tgi
	// +kubebuilder:default=ollama
	// +optional
	Runtime string `json:"runtime,omitempty"`
}

// UpstreamSpec is where paid requests are forwarded: a Service in the cluster (http offers)
// or a URL (inference offers, e.g. a model server on the host).
type UpstreamSpec struct {
	// Service is the upstream Service's name.
	// +optional
	Service string `json:"service,omitempty"`
	// Namespace is the upstream Service's namespace.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// Port is the upstream Service's port.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	// +optional
	Port int32 `json:"port,omitempty"`
	// HealthPath is the upstream's health check path.
	// +optional
	HealthPath string `json:"healthPath,omitempty"`
	// URL is the upstream's base URL (http or https), used instead of Service.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	URL string `json:"url,omitempty"`
}

// PaymentSpec is the x402 payment requirement of an offer.
type PaymentSpec struct {
	// Scheme is the x402 payment scheme.
	// +kubebuilder:validation:Enum=exact
	// +kubebuilder:default=exact
	// +optional
	Scheme string `json:"scheme,omitempty"`
	// Network is the chain, by name (base-sepolia) or CAIP-2 id (eip155:84532).
	// +kubebuilder:validation:MinLength=1
	Network string `json:"network"`
	// PayTo is the address that receives payments.
	// +kubebuilder:validation:Pattern=`^0x[0-9a-fA-F]{40}$`
	PayTo string `json:"payTo"`
	// MaxTimeoutSeconds is how long a payment authorization may take.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=86400
	// +kubebuilder:default=300
	// +optional
	MaxTimeoutSeconds int32 `json:"maxTimeoutSeconds,omitempty"`
	// Asset is the token paid in; omitted means the chain's USDC.
	// +optional
	Asset *AssetSpec `json:"asset,omitempty"`
	// Price is what one request costs, in token units (decimal strings).
	Price PriceSpec `json:"price"`
	// Facilitator is the x402 facilitator's base URL.
	// +kubebuilder:validation:Pattern=`^https?://`
	// +optional
	Facilitator string `json:"facilitator,omitempty"`
}

// AssetSpec is the token a payment is made in.
type AssetSpec struct {
	// Address is the token contract.
	// +kubebuilder:validation:Pattern=`^0x[0-9a-fA-F]{40}$`
	Address string `json:"address"`
	// Symbol is the token's symbol, e.g. USDC.
	// +optional
	Symbol string `json:"symbol,omitempty"`
	// Decimals is the token's number of decimals.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=255
	Decimals int32 `json:"decimals"`
	// TransferMethod is how the payment moves the token.
	// +kubebuilder:validation:Enum=eip3009;permit2
	// +optional
	TransferMethod string `json:"transferMethod,omitempty"`
	// EIP712Name is the token's EIP-712 domain name.
	// +optional
	EIP712Name string `json:"eip712Name,omitempty"`
	// EIP712Version is the token's EIP-712 domain version.
	// +optional
	EIP712Version string `json:"eip712Version,omitempty"`
}

// PriceSpec holds one price model, as decimal strings in token units: perRequest, perHour
// (http offers), or per-token prices (inference offers: perMTok, or inputPerMTok and
// outputPerMTok), which perRequest may accompany as the flat price of buyers without x402 upto.
type PriceSpec struct {
	// PerRequest is the price of one request (with per-token prices: the exact-scheme price).
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	PerRequest string `json:"perRequest,omitempty"`
	// PerMTok is the price of one million tokens, prompt and completion alike. Buyers paying
	// with x402 upto are charged what each answer used; others pay a flat price per request
	// (perRequest, else this price for 1000 tokens).
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	PerMTok string `json:"perMTok,omitempty"`
	// InputPerMTok and OutputPerMTok price prompt and completion tokens apart; each overrides
	// perMTok for its side.
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	InputPerMTok string `json:"inputPerMTok,omitempty"`
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	OutputPerMTok string `json:"outputPerMTok,omitempty"`
	// MaxInputTokens and MaxOutputTokens bound one request's charge: the upto maximum a buyer
	// authorizes is their price, and no answer may be longer than MaxOutputTokens (default
	// 32768 and 4096).
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxInputTokens int64 `json:"maxInputTokens,omitempty"`
	// +kubebuilder:validation:Minimum=1
	// +optional
	MaxOutputTokens int64 `json:"maxOutputTokens,omitempty"`
	// PerHour is the price of one hour of use (http offers).
	// +kubebuilder:validation:Pattern=`^[0-9]+(\.[0-9]+)?$`
	// +optional
	PerHour string `json:"perHour,omitempty"`
}

// RegistrationSpec is the ERC-8004 / OASF description of an offer.
type RegistrationSpec struct {
	// Enabled turns on registration.
	// +optional
	Enabled bool `json:"enabled,omitempty"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Description string `json:"description,omitempty"`
	// +optional
	Image string `json:"image,omitempty"`
	// +optional
	Skills []string `json:"skills,omitempty"`
	// +optional
	Domains []string `json:"domains,omitempty"`
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}

// ServiceOfferStatus is written by the cluster, never by obol.
type ServiceOfferStatus struct {
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Endpoint is the public path the offer is served at.
	// +optional
	Endpoint string `json:"endpoint,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}

// ServiceOfferList is a list of ServiceOffers.
//
// +kubebuilder:object:root=true
type ServiceOfferList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ServiceOffer `json:"items"`
}
