"""A minimal OTLP/HTTP logs receiver: decodes every ExportLogsServiceRequest
POSTed to /v1/logs (application/x-protobuf) with the opentelemetry-proto
package and prints it as canonical lines (see decode_logs.py), each request
introduced by a `request|<content-type>|<bytes>` line.

Prints `listening <port>` first (it binds 127.0.0.1 on a free port), answers
each request with an empty ExportLogsServiceResponse, and exits when its
stdin closes. Used by tests/tests/sdk_bridge_exports_over_otlp_http.rs.
"""

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from decode_logs import request_lines
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)

OUTPUT = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        content_type = self.headers.get("Content-Type", "")
        if self.path != "/v1/logs" or content_type != "application/x-protobuf":
            self.send_error(404 if self.path != "/v1/logs" else 415)
            return
        request = ExportLogsServiceRequest()
        try:
            request.ParseFromString(body)
        except Exception as error:  # a malformed request is the test's failure
            with OUTPUT:
                print("malformed|" + str(error), flush=True)
            self.send_error(400)
            return
        with OUTPUT:
            print("request|%s|%d" % (content_type, len(body)))
            for line in request_lines(request):
                print(line)
            sys.stdout.flush()
        response = ExportLogsServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(response)))
        self.end_headers()
        self.wfile.write(response)

    def log_message(self, format, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("listening %d" % server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
