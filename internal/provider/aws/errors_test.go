package aws

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyferry/keyferry/internal/provider"
)

// respErr is an error as the SDK returns it for an HTTP answer.
func respErr(status int, header http.Header, err error) error {
	if header == nil {
		header = http.Header{}
	}
	return &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue", Err: &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status, Header: header}},
			Err:      err,
		},
	}}
}

func apiErr(code, message string) error { return &smithy.GenericAPIError{Code: code, Message: message} }

func TestClassify(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"ResourceNotFoundException", respErr(400, nil, apiErr("ResourceNotFoundException", "no such secret")), provider.ErrNotFound},
		{"ParameterNotFound", respErr(400, nil, apiErr("ParameterNotFound", "")), provider.ErrNotFound},
		{"ParameterVersionNotFound", respErr(400, nil, apiErr("ParameterVersionNotFound", "")), provider.ErrNotFound},
		{"secret marked for deletion", respErr(400, nil, apiErr("InvalidRequestException",
			"You can't perform this operation on the secret because it was marked for deletion.")), provider.ErrNotFound},
		{"other InvalidRequestException", respErr(400, nil, apiErr("InvalidRequestException", "bad request")), nil},
		{"AccessDeniedException", respErr(400, nil, apiErr("AccessDeniedException", "")), provider.ErrForbidden},
		{"STS AccessDenied", respErr(403, nil, apiErr("AccessDenied", "")), provider.ErrForbidden},
		{"DecryptionFailure", respErr(400, nil, apiErr("DecryptionFailure", "")), provider.ErrForbidden},
		{"UnrecognizedClientException", respErr(400, nil, apiErr("UnrecognizedClientException", "")), provider.ErrUnauthenticated},
		{"InvalidSignatureException", respErr(400, nil, apiErr("InvalidSignatureException", "")), provider.ErrUnauthenticated},
		{"ExpiredTokenException", respErr(400, nil, apiErr("ExpiredTokenException", "")), provider.ErrUnauthenticated},
		{"InvalidIdentityToken", respErr(400, nil, apiErr("InvalidIdentityToken", "")), provider.ErrUnauthenticated},
		{"unknown code with 403", respErr(403, nil, apiErr("UnknownError", "UnknownError")), provider.ErrForbidden},
		{"unknown code with 401", respErr(401, nil, apiErr("UnknownError", "UnknownError")), provider.ErrUnauthenticated},
		{"XML error document where JSON was expected", respErr(403, nil, &smithy.DeserializationError{
			Err:      errors.New("invalid character '<'"),
			Snapshot: []byte(`<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code><Message>x</Message></Error></Errors></ErrorResponse>`),
		}), provider.ErrUnauthenticated},
		{"connection refused", &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: errors.New("dial tcp: connection refused")}}, provider.ErrUnreachable},
		{"no credentials", fmt.Errorf("get credentials: %w", errNoCredentials), provider.ErrUnauthenticated},
		{"already classified", fmt.Errorf("reading credentials: %w", provider.ErrInvalidConfig), provider.ErrInvalidConfig},
		{"validation error is left alone", respErr(400, nil, apiErr("ValidationException", "")), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classify(tt.err)
			if !errors.Is(got, tt.err) {
				t.Errorf("classify(%v) = %v, which does not wrap the SDK's error", tt.err, got)
			}
			if tt.want == nil {
				if isClassified(got) {
					t.Errorf("classify(%v) = %v, want no sentinel", tt.err, got)
				}
				return
			}
			if !errors.Is(got, tt.want) {
				t.Errorf("classify(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestClassifyThrottling(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		after time.Duration
	}{
		{"ThrottlingException", respErr(400, nil, apiErr("ThrottlingException", "Rate exceeded")), 0},
		{"TooManyRequestsException", respErr(400, nil, apiErr("TooManyRequestsException", "")), 0},
		{"STS Throttling with Retry-After", respErr(400, http.Header{"Retry-After": {"7"}}, apiErr("Throttling", "")), 7 * time.Second},
		{"HTTP 429", respErr(429, nil, apiErr("UnknownError", "UnknownError")), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var throttled *provider.ThrottledError
			got := classify(tt.err)
			if !errors.As(got, &throttled) {
				t.Fatalf("classify(%v) = %v, want a *provider.ThrottledError", tt.err, got)
			}
			if throttled.RetryAfter != tt.after {
				t.Errorf("RetryAfter = %s, want %s", throttled.RetryAfter, tt.after)
			}
			if !errors.Is(got, tt.err) {
				t.Errorf("classify(%v) = %v, which does not wrap the SDK's error", tt.err, got)
			}
		})
	}
}

func TestXMLErrorCode(t *testing.T) {
	tests := []struct {
		doc  string
		want string
	}{
		{`<ErrorResponse><Error><Code>AccessDenied</Code></Error></ErrorResponse>`, "AccessDenied"},
		{`<Errors><Error><Code>SignatureDoesNotMatch</Code>`, "SignatureDoesNotMatch"},
		{`{"__type":"x"}`, ""},
		{`<Code></Code>`, ""},
		{`<Code>not a code</Code>`, ""},
		{`<Code>Unterminated`, ""},
	}
	for _, tt := range tests {
		if got := xmlErrorCode([]byte(tt.doc)); got != tt.want {
			t.Errorf("xmlErrorCode(%q) = %q, want %q", tt.doc, got, tt.want)
		}
	}
}
