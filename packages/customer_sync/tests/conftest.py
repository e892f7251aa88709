import sys
from pathlib import Path

# the tests share one helper module (cs_contact_sim); importlib mode does not put this dir on path
sys.path.insert(0, str(Path(__file__).parent))
