"""A scripted OTLP logs and traces endpoint, over HTTP (http.server:
`/v1/traces` takes ExportTraceServiceRequests, any other path logs) or gRPC
(grpcio with the opentelemetry-proto package's LogsService and TraceService
stubs).

Usage: otlp_scripted_peer.py http|grpc PORT SCRIPT_JSON [--tls CERT KEY] [--client-ca CA]

--tls serves over TLS with that certificate and key; --client-ca also
requires a client certificate issued by that CA (mutual TLS: Python's `ssl`
with CERT_REQUIRED, grpcio's ssl_server_credentials with
require_client_auth).

PORT 0 picks a free port. Prints `listening <port>` first. Each request
takes the next answer of SCRIPT_JSON (a list), then every further request
gets a plain success. An answer is an object:

  {"status": 503, "retry_after": "1"}   HTTP status (+ Retry-After)
  {"code": "UNAVAILABLE"}               gRPC status code name
  {"rejected": 2, "message": "why"}     success with partial_success
  {"raw": "not protobuf"}               success whose body is these bytes (HTTP)
  {"sleep": 2.0}                        wait that long, then a plain success

For every request it prints one `request|<n>|<answer>|<encoding>|<headers>`
line (encoding: `gzip` or `plain`, then `+json` for an OTLP/JSON body,
which is parsed with protobuf's `json_format` and answered in JSON;
headers: the `x-`-prefixed ones, `k=v` joined by `;`), then the request's
canonical lines (decode_logs.request_lines: `resource|...` and one line per
record). Exits when its stdin closes.
"""

import gzip
import json
import ssl
import sys
import threading
import time

from decode_logs import request_lines
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
import decode_traces

LOCK = threading.Lock()
STATE = {"n": 0}


def next_answer(script):
    with LOCK:
        n = STATE["n"]
        STATE["n"] += 1
    return n, (script[n] if n < len(script) else {})


def report(n, answer, gzipped, headers, request, as_json=False):
    encoding = ("gzip" if gzipped else "plain") + ("+json" if as_json else "")
    lines = ["request|%d|%s|%s|%s" % (n, json.dumps(answer, sort_keys=True), encoding, ";".join(headers))]
    if isinstance(request, ExportTraceServiceRequest):
        lines.extend(decode_traces.request_lines(request))
    elif request is not None:
        lines.extend(request_lines(request))
    with LOCK:
        for line in lines:
            print(line)
        sys.stdout.flush()


def success(answer, traces=False):
    response = ExportTraceServiceResponse() if traces else ExportLogsServiceResponse()
    if "rejected" in answer:
        if traces:
            response.partial_success.rejected_spans = answer["rejected"]
        else:
            response.partial_success.rejected_log_records = answer["rejected"]
        response.partial_success.error_message = answer.get("message", "")
    return response


def serve_http(port, script, tls, client_ca):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            gzipped = self.headers.get("Content-Encoding") == "gzip"
            if gzipped:
                body = gzip.decompress(body)
            as_json = self.headers.get("Content-Type") == "application/json"
            traces = self.path.endswith("/v1/traces")
            request = ExportTraceServiceRequest() if traces else ExportLogsServiceRequest()
            if as_json:
                json_format.Parse(body.decode("utf-8"), request)
            else:
                request.ParseFromString(body)
            headers = sorted(k.lower() + "=" + v for k, v in self.headers.items() if k.lower().startswith("x-"))
            n, answer = next_answer(script)
            if "sleep" in answer:
                time.sleep(answer["sleep"])
            status = answer.get("status", 200)
            if status == 200 and "raw" in answer:
                payload = answer["raw"].encode()
            elif status == 200 and as_json:
                payload = json_format.MessageToJson(success(answer, traces)).encode()
            elif status == 200:
                payload = success(answer, traces).SerializeToString()
            else:
                payload = b"scripted failure"
            report(n, answer, gzipped, headers, request if status == 200 else None, as_json)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if as_json else "application/x-protobuf")
                if "retry_after" in answer:
                    self.send_header("Retry-After", answer["retry_after"])
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # A refused handshake (the test's point): no traceback.
            pass

    server = Server(("127.0.0.1", port), Handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls[0], tls[1])
        if client_ca:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(client_ca)
        # The handshake runs in the request's thread: one that fails does
        # not stop the server.
        server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    print("listening %d" % server.server_address[1])
    sys.stdout.flush()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def serve_grpc(port, script, tls, client_ca):
    from concurrent import futures

    import grpc
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

    def export(request, context, traces):
        metadata = dict(context.invocation_metadata())
        headers = sorted(k + "=" + v for k, v in metadata.items() if k.startswith("x-"))
        gzipped = metadata.get("grpc-encoding") == "gzip"
        n, answer = next_answer(script)
        if "sleep" in answer:
            time.sleep(answer["sleep"])
        if "code" in answer:
            report(n, answer, gzipped, headers, None)
            context.abort(getattr(grpc.StatusCode, answer["code"]), "scripted failure")
        report(n, answer, gzipped, headers, request)
        return success(answer, traces)

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):
            return export(request, context, False)

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            return export(request, context, True)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    if tls:
        with open(tls[0], "rb") as cert, open(tls[1], "rb") as key:
            pair = (key.read(), cert.read())
        roots = None
        if client_ca:
            with open(client_ca, "rb") as ca:
                roots = ca.read()
        credentials = grpc.ssl_server_credentials([pair], root_certificates=roots, require_client_auth=bool(client_ca))
        bound = server.add_secure_port("127.0.0.1:%d" % port, credentials)
    else:
        bound = server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("listening %d" % bound)
    sys.stdout.flush()
    return server


def main():
    protocol, port, script = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
    tls, client_ca, rest = None, None, sys.argv[4:]
    while rest:
        if rest[0] == "--tls":
            tls, rest = rest[1:3], rest[3:]
        elif rest[0] == "--client-ca":
            client_ca, rest = rest[1], rest[2:]
        else:
            raise SystemExit("unknown argument %s" % rest[0])
    if protocol == "http":
        server = serve_http(port, script, tls, client_ca)
    elif protocol == "grpc":
        server = serve_grpc(port, script, tls, client_ca)
    else:
        raise SystemExit("protocol: http or grpc")
    sys.stdin.read()
    # Kept alive until here: a gRPC server stops when it is collected.
    del server


if __name__ == "__main__":
    main()
