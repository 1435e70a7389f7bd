package admin

import (
	"context"
	"errors"
	"net/http"

	"connectrpc.com/connect"

	"github.com/spendledger/spendledger/services/gateway/internal/openai"
)

// Error codes the admin API adds to the gateway's.
const (
	codeNotFound           = "not_found"
	codeAlreadyExists      = "already_exists"
	codeFailedPrecondition = "failed_precondition"
	codeUnavailable        = "service_unavailable"
	codeUnsupported        = "unsupported_parameter"
)

// fromConnect maps a failed call to the budget or ledger service to the
// client's error, by Connect code:
//
//	InvalidArgument     400 invalid_request_error
//	FailedPrecondition  400 invalid_request_error / failed_precondition (a
//	                    referenced team or org does not exist, a principal is
//	                    still referenced: the request must change, as LiteLLM
//	                    answers 400)
//	NotFound            404 not_found_error
//	AlreadyExists       409 invalid_request_error / already_exists (LiteLLM
//	                    answers 400; 409 lets a client tell "exists" from
//	                    "malformed" without parsing the message)
//	PermissionDenied    403 permission_error
//	Unauthenticated     401 authentication_error
//	Unavailable         503 api_error, Retry-After: 1
//	DeadlineExceeded    504 timeout_error
//	anything else       502 api_error (the service failed, not the request)
func fromConnect(service, op string, err error) *openai.Error {
	msg := connectMessage(err)
	e := &openai.Error{Message: msg}
	switch code := connect.CodeOf(err); {
	case code == connect.CodeInvalidArgument:
		e.Status, e.Type = http.StatusBadRequest, openai.TypeInvalidRequest
	case code == connect.CodeFailedPrecondition:
		e.Status, e.Type, e.Code = http.StatusBadRequest, openai.TypeInvalidRequest, codeFailedPrecondition
	case code == connect.CodeNotFound:
		e.Status, e.Type, e.Code = http.StatusNotFound, openai.TypeNotFound, codeNotFound
	case code == connect.CodeAlreadyExists:
		e.Status, e.Type, e.Code = http.StatusConflict, openai.TypeInvalidRequest, codeAlreadyExists
	case code == connect.CodePermissionDenied:
		e.Status, e.Type = http.StatusForbidden, openai.TypePermission
	case code == connect.CodeUnauthenticated:
		e.Status, e.Type, e.Code = http.StatusUnauthorized, openai.TypeAuthentication, openai.CodeInvalidAPIKey
	case code == connect.CodeUnavailable:
		e.Status, e.Type, e.Code, e.RetryAfter = http.StatusServiceUnavailable, openai.TypeAPI, codeUnavailable, 1
		e.Message = service + " service unavailable (" + op + "): " + msg
	case code == connect.CodeDeadlineExceeded || errors.Is(err, context.DeadlineExceeded):
		e.Status, e.Type, e.Code = http.StatusGatewayTimeout, openai.TypeTimeout, openai.CodeTimeout
		e.Message = service + " service did not answer in time (" + op + "): " + msg
	default:
		e.Status, e.Type = http.StatusBadGateway, openai.TypeAPI
		e.Message = service + " service failed (" + op + "): " + msg
	}
	return e
}

func badRequest(param, msg string) *openai.Error {
	return openai.BadRequest(msg, param)
}

func notFound(msg string) *openai.Error {
	return &openai.Error{Status: http.StatusNotFound, Type: openai.TypeNotFound, Code: codeNotFound, Message: msg}
}

// unsupported refuses a field that would set a limit this gateway does not
// enforce: accepting it silently would look like a limit that is not there.
func unsupported(param, why string) *openai.Error {
	return &openai.Error{Status: http.StatusBadRequest, Type: openai.TypeInvalidRequest, Code: codeUnsupported, Param: param,
		Message: param + " is not supported by this gateway: " + why}
}
