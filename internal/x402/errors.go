package x402

import (
	"fmt"
	"net/http"
)

// Machine-readable reasons of an *Error.
const (
	// ReasonInvalidPaymentHeader: the payment header is not base64 of a well-formed payload (400).
	ReasonInvalidPaymentHeader = "invalid_payment_header"
	// ReasonNoMatchingRequirement: the payment matches none of the offered requirements (402).
	ReasonNoMatchingRequirement = "no_matching_requirement"
	// ReasonSchemeMismatch, ReasonNetworkMismatch, ReasonAssetMismatch, ReasonPayToMismatch and
	// ReasonAmountMismatch: one field of the payment differs from the offer (402).
	ReasonSchemeMismatch  = "scheme_mismatch"
	ReasonNetworkMismatch = "network_mismatch"
	ReasonAssetMismatch   = "asset_mismatch"
	ReasonPayToMismatch   = "payto_mismatch"
	ReasonAmountMismatch  = "payment_amount_mismatch"
	// ReasonExpiredAuthorization: the authorization's validBefore has passed (402).
	ReasonExpiredAuthorization = "expired_authorization"
	// ReasonAuthorizationNotYetValid: the authorization's validAfter is in the future (402).
	ReasonAuthorizationNotYetValid = "authorization_not_yet_valid"
	// ReasonAuthorizationWindowTooLong: validBefore is further away than the offer's
	// maxTimeoutSeconds allows (402).
	ReasonAuthorizationWindowTooLong = "authorization_window_too_long"
	// ReasonReplayedPayment: the same authorization was already used (402).
	ReasonReplayedPayment = "replayed_payment"
	// ReasonFacilitatorUnavailable: the facilitator could not be reached or failed (503).
	ReasonFacilitatorUnavailable = "facilitator_unavailable"
	// ReasonVerificationFailed: the facilitator judged the payment invalid (402).
	ReasonVerificationFailed = "verification_failed"
	// ReasonSettlementFailed: the facilitator could not settle the payment.
	ReasonSettlementFailed = "settlement_failed"
)

// Error is a payment failure with the HTTP status the server should answer with.
type Error struct {
	// Status is the HTTP status code: 400 for a malformed payment, 402 for a payment that does
	// not satisfy the offer.
	Status int `json:"-"`
	// Reason is machine readable, one of the Reason constants.
	Reason string `json:"reason"`
	// Message is for humans: which field, what was sent, what is required.
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "x402: " + e.Reason
	}
	return "x402: " + e.Reason + ": " + e.Message
}

// Errorf returns an *Error with a formatted message.
func Errorf(status int, reason, format string, args ...any) *Error {
	return &Error{Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

func invalidHeader(format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, ReasonInvalidPaymentHeader, format, args...)
}

func mismatch(reason, format string, args ...any) *Error {
	return Errorf(http.StatusPaymentRequired, reason, format, args...)
}
