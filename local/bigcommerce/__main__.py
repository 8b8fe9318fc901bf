from local.bigcommerce.app import build_app
from local.serve import serve

serve("bigcommerce", build_app)
