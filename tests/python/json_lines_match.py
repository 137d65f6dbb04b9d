"""Checks OTLP/JSON lines against the protobuf requests they were written from.

Usage: json_lines_match.py LINES_FILE REQUEST_FILE...
       json_lines_match.py --parse-only LINES_FILE

LINES_FILE holds one OTLP/JSON line per request file, in the same order. Each
line must be strict JSON (RFC 8259: no NaN or Infinity tokens, no control
characters in strings), parse with protobuf's own JSON parser
(google.protobuf.json_format.Parse, after the one OTLP/JSON exception:
traceId and spanId are hex, not base64) into an ExportLogsServiceRequest, and
equal the request decoded from its protobuf bytes. Prints "ok N" for N lines;
exits non-zero naming the first line that does not match.

With --parse-only there are no request files: each line is parsed the same
way and one line per record is printed: its scope, severity number, body
(hex of its UTF-8 string) and attribute keys.

Used by tests/tests/otlp_json_lines_parse_as_the_protobuf_they_come_from.rs.
"""

import base64
import json
import sys

from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def refuse_constant(name):
    raise ValueError("not JSON: bare " + name)


def hex_ids_to_base64(request):
    for resource_logs in request.get("resourceLogs", []):
        for scope_logs in resource_logs.get("scopeLogs", []):
            for record in scope_logs.get("logRecords", []):
                for key in ("traceId", "spanId"):
                    if key in record:
                        value = record[key]
                        if value != value.lower() or len(value) % 2:
                            raise ValueError(key + " is not lowercase hex: " + value)
                        record[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def parse(line):
    parsed = json.loads(line, parse_constant=refuse_constant)
    hex_ids_to_base64(parsed)
    return json_format.Parse(json.dumps(parsed), ExportLogsServiceRequest())


def parse_only(lines_file):
    with open(lines_file, "rb") as f:
        lines = f.read().decode("utf-8").splitlines()
    for n, line in enumerate(lines):
        try:
            request = parse(line)
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            sys.exit("line %d does not parse: %s\n%s" % (n, e, line[:2000]))
        for resource_logs in request.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    print(
                        "|".join(
                            [
                                scope_logs.scope.name,
                                str(record.severity_number),
                                record.body.string_value.encode("utf-8").hex(),
                                ",".join(a.key for a in record.attributes),
                            ]
                        )
                    )


def main():
    if sys.argv[1] == "--parse-only":
        return parse_only(sys.argv[2])
    lines_file, request_files = sys.argv[1], sys.argv[2:]
    with open(lines_file, "rb") as f:
        raw = f.read()
    lines = raw.decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(request_files):
        sys.exit("%d lines for %d requests" % (len(lines), len(request_files)))
    for n, (line, path) in enumerate(zip(lines, request_files)):
        try:
            from_json = parse(line)
        except Exception as e:  # noqa: BLE001 - any failure is the answer
            sys.exit("line %d does not parse: %s\n%s" % (n, e, line[:2000]))
        with open(path, "rb") as f:
            from_bytes = ExportLogsServiceRequest.FromString(f.read())
        if from_json != from_bytes:
            sys.exit(
                "line %d differs from its request:\njson:  %s\nbytes: %s"
                % (n, from_json, from_bytes)
            )
    print("ok %d" % len(lines))


if __name__ == "__main__":
    main()
