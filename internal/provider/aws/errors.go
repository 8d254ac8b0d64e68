package aws

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyferry/keyferry/internal/provider"
)

// codeKind says what an AWS error code of the APIs keyferry calls (Secrets
// Manager, SSM, STS) means to the engine: a sentinel, errThrottledCode, or
// nil for codes that need no special handling.
func codeKind(code string) error {
	switch code {
	case "ResourceNotFoundException", // Secrets Manager
		"ParameterNotFound", "ParameterVersionNotFound": // Parameter Store
		return provider.ErrNotFound
	case "AccessDeniedException", "AccessDenied", "UnauthorizedOperation", "AuthorizationError",
		// Secrets Manager cannot use the secret's KMS key: almost always
		// the key policy or a missing kms:Decrypt permission.
		"DecryptionFailure":
		return provider.ErrForbidden
	case "UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
		"InvalidSignatureException", "SignatureDoesNotMatch", "IncompleteSignature",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException",
		"ExpiredToken", "ExpiredTokenException", "RequestExpired", "AuthFailure",
		"InvalidIdentityToken", "IDPRejectedClaim":
		return provider.ErrUnauthenticated
	case "ThrottlingException", "Throttling", "ThrottledException", "TooManyRequestsException",
		"RequestLimitExceeded", "RequestThrottled", "RequestThrottledException", "SlowDown":
		return errThrottledCode
	}
	return nil
}

// errThrottledCode is codeKind's answer for throttling codes.
var errThrottledCode = errors.New("throttled")

// isClassified says whether err already says what happened.
func isClassified(err error) bool {
	var throttled *provider.ThrottledError
	if errors.As(err, &throttled) {
		return true
	}
	for _, s := range []error{
		provider.ErrNotFound, provider.ErrForbidden, provider.ErrUnauthenticated, provider.ErrUnreachable,
		provider.ErrInvalidConfig, provider.ErrNotSupported, provider.ErrBadResponse,
	} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// classify wraps err, an error of the AWS SDK, with the provider sentinel
// that says what happened, or in a *provider.ThrottledError. AWS error
// messages name resources and principals, never secret values, so err's
// text is kept.
func classify(err error) error {
	if err == nil || isClassified(err) {
		return err
	}
	if kind := kindOf(err); kind != nil {
		return fmt.Errorf("%w: %w", kind, err)
	}
	if isThrottled(err) {
		return &provider.ThrottledError{RetryAfter: retryAfter(err), Err: err}
	}
	return err
}

// kindOf returns the sentinel for err, or nil when none applies (or err is
// throttling).
func kindOf(err error) error {
	if errors.Is(err, errNoCredentials) {
		return provider.ErrUnauthenticated
	}
	code, message := errorCode(err)
	if k := kindOfCode(code, message); k != nil {
		return k
	}
	var sendErr *smithyhttp.RequestSendError
	if errors.As(err, &sendErr) {
		return provider.ErrUnreachable
	}
	if codeKind(code) == errThrottledCode {
		return nil
	}
	// An answer without a known code (a proxy's page, an error document the
	// SDK could not read) still has an HTTP status.
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		switch respErr.HTTPStatusCode() {
		case http.StatusUnauthorized:
			return provider.ErrUnauthenticated
		case http.StatusForbidden:
			return provider.ErrForbidden
		}
	}
	return nil
}

// unknownCode is the code the SDK gives errors whose code it cannot read.
const unknownCode = "UnknownError"

// errorCode returns err's AWS error code and message. When the SDK could not
// parse an error document because it is XML where JSON was expected (as
// AWS-compatible servers such as moto answer), the code is read from the
// XML. Only the code is taken from the document.
func errorCode(err error) (code, message string) {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode() != unknownCode {
		return apiErr.ErrorCode(), apiErr.ErrorMessage()
	}
	var de *smithy.DeserializationError
	if errors.As(err, &de) {
		if c := xmlErrorCode(de.Snapshot); c != "" {
			return c, ""
		}
	}
	return "", ""
}

// xmlErrorCode returns the text of the first <Code> element of an AWS XML
// error document, if it looks like an error code.
func xmlErrorCode(doc []byte) string {
	const open, closing = "<Code>", "</Code>"
	s := string(doc)
	i := strings.Index(s, open)
	if i < 0 {
		return ""
	}
	s = s[i+len(open):]
	j := strings.Index(s, closing)
	if j <= 0 || j > 64 {
		return ""
	}
	code := s[:j]
	for _, r := range code {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '_') {
			return ""
		}
	}
	return code
}

// kindOfCode maps an AWS error code (and, for codes that cover several
// cases, its message) to a sentinel.
func kindOfCode(code, message string) error {
	if k := codeKind(code); k != nil && k != errThrottledCode {
		return k
	}
	// Secrets Manager refuses to read a secret scheduled for deletion with
	// InvalidRequestException ("... marked for deletion", moto: "marked
	// deleted"); like ESO, treat it as gone.
	if code == "InvalidRequestException" && strings.Contains(message, "marked") && strings.Contains(message, "delet") {
		return provider.ErrNotFound
	}
	return nil
}

func isThrottled(err error) bool {
	if code, _ := errorCode(err); codeKind(code) == errThrottledCode {
		return true
	}
	var respErr *smithyhttp.ResponseError
	return errors.As(err, &respErr) && respErr.HTTPStatusCode() == http.StatusTooManyRequests
}

func isNotFound(err error) bool { return errors.Is(err, provider.ErrNotFound) }

// retryAfter reads a Retry-After header in seconds, which AWS sends on some
// throttled answers.
func retryAfter(err error) time.Duration {
	var respErr *smithyhttp.ResponseError
	if !errors.As(err, &respErr) || respErr.Response == nil {
		return 0
	}
	secs, convErr := strconv.Atoi(strings.TrimSpace(respErr.Response.Header.Get("Retry-After")))
	if convErr != nil || secs <= 0 {
		return 0
	}
	return time.Duration(secs) * time.Second
}
