"""Floor 3, the reports: three-rate, ranking, snail-seat, overdue and trend tables as the
terminal, CSV and XLSX show them."""
