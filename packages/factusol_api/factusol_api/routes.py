"""The FactuSOL API's routes (reference §2): every call is a POST to one of these."""

__all__ = ["ROUTE_INSERT", "ROUTE_LOAD_TABLE", "ROUTE_LOGIN", "ROUTE_QUERY", "ROUTE_UPDATE"]

ROUTE_LOGIN = "/login/Autenticar"
ROUTE_LOAD_TABLE = "/admin/CargaTabla"
ROUTE_QUERY = "/admin/LanzarConsulta"
ROUTE_INSERT = "/admin/EscribirRegistro"
ROUTE_UPDATE = "/admin/ActualizarRegistro"
