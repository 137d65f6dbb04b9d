"""Decodes ExportTraceServiceRequest files with the opentelemetry-proto
package and prints one canonical line per resource and per span, in the
notation of decode_logs.py (strings and bytes as hex). Used by
tests/tests/python_opentelemetry_proto_decodes_our_spans.rs.
"""

import decode_logs
from decode_logs import kv
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def request_lines(request):
    """One canonical line per resource and per span of `request`."""
    lines = []
    for rs in request.resource_spans:
        lines.append("resource|" + ";".join(kv(a) for a in rs.resource.attributes))
        for ss in rs.scope_spans:
            for s in ss.spans:
                lines.append(
                    "|".join(
                        [
                            ss.scope.name.encode("utf-8").hex(),
                            s.name.encode("utf-8").hex(),
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            str(s.flags),
                            str(s.kind),
                            str(s.start_time_unix_nano),
                            str(s.end_time_unix_nano),
                            ";".join(kv(a) for a in s.attributes),
                            str(s.dropped_attributes_count),
                            str(s.status.code),
                            s.status.message.encode("utf-8").hex(),
                        ]
                    )
                )
    return lines


if __name__ == "__main__":
    decode_logs.main(ExportTraceServiceRequest, request_lines)
