from local.dataverse.app import build_app
from local.serve import serve

serve("dataverse", build_app)
