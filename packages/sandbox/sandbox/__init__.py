"""Local emulators of the FactuSOL and Clientify APIs (demo, tests, benchmark).

Independent of the product's API clients on purpose: it is built from the reference, so it can
catch a client that misreads the API. Product code never imports it.
"""
