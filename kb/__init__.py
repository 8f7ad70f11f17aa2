"""智能知识库: answers that agents find while they type and waiting callers can hear.

Entries are versioned and reviewed; matching blends BM25 over jieba terms and their
pinyin (homophones from speech) with character similarity, and every offer is recorded
so true deflection (accepted, and no new ticket on the matter within days) is measured.
"""
