"""Moved (issue #28): ``studies/select_lr_seg.py``; this old path only says so."""
import shlex
import sys

print('benchmarks/ holds the cost benchmarks only; this study runner moved, run:\n'
      '    python studies/select_lr_seg.py',
      shlex.join(sys.argv[1:]), file=sys.stderr)
sys.exit(2)
