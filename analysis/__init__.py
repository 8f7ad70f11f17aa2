"""未诉先办: the monthly analysis that turns tickets into governance (issue 23).

What rose beyond its season and where (surges), what citizens mainly raise (topics),
which problem to take on next (每月一题 candidates), whose "resolved" the citizens
contradict and who bounces tickets (accountability signals). Each part reads the store
and returns plain rows; `analysis.runs` writes them as one stored run that reports and
the console read.
"""
