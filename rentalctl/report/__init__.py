"""The marketplace at a glance: the KPI tables read through the warehouse port (``kpis``), and
one self-contained HTML report of the KPIs, the state machine and the run history
(``report``). Everything here reads through the ports, so a local DuckDB warehouse and Redshift
give the same report."""
