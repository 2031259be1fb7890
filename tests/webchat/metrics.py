#!/usr/bin/python3
"""Scrapes a webchat server's GET /metrics and parses it with the Prometheus
client's own text parser (Debian python3-prometheus-client), as Prometheus
would read it: a malformed exposition raises here.  Prints one JSON object,
family name -> {"type", "help", "samples": [{"name", "labels", "value"}]},
for tests/webchat/lb.mjs.

    /usr/bin/python3 metrics.py http://127.0.0.1:PORT/metrics
"""
import json
import sys
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def main():
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        content_type = r.headers.get('Content-Type', '')
        text = r.read().decode('utf-8')
    if not content_type.startswith('text/plain') or 'version=0.0.4' not in content_type:
        sys.exit(f'not the Prometheus text format 0.0.4: Content-Type {content_type!r}')
    families = {}
    for f in text_string_to_metric_families(text):
        if f.name in families:
            sys.exit(f'family {f.name} appears twice')
        families[f.name] = {
            'type': f.type,
            'help': f.documentation,
            'samples': [{'name': s.name, 'labels': s.labels, 'value': s.value} for s in f.samples],
        }
    json.dump(families, sys.stdout)


if __name__ == '__main__':
    main()
