"""The ERP store: orders and their lines, stock per model, the stock ledger, the outbox of
Shopee calls and the record of actions; and the ``stock`` and ``erp`` commands."""
