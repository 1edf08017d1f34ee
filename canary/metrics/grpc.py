"""What a failed gRPC call looks like in Istio's metrics.

A gRPC call is an HTTP/2 request answered 200 whatever its outcome; the outcome is the
``grpc-status`` trailer, which Istio reports as ``grpc_response_status`` (empty for other
requests). Counting only 5xx as failures would see none of a gRPC service's.
"""

#: gRPC's statuses that mean the server failed, as 5xx does for HTTP: UNKNOWN,
#: DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE and DATA_LOSS (client errors
#: such as NOT_FOUND or INVALID_ARGUMENT are answers, as 4xx are).
GRPC_SERVER_ERRORS = "2|4|12|13|14|15"
