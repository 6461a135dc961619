"""The SDK's typed request params that services build, re-exported so that only the boundary imports
``stripe``: mypy checks each request against the pinned API version's parameters."""
from stripe.params import (AccountCreateParams, AccountCreateParamsBusinessProfile, AccountCreateParamsController,
                           AccountLinkCreateParams, CreditNoteCreateParams, CreditNoteListParams, CustomerBalanceTransactionCreateParams,
                           CustomerBalanceTransactionListParams, CustomerCreateParams, CustomerUpdateParams,
                           DisputeListParams, InvoiceAddLinesParams, InvoiceAddLinesParamsLine,
                           InvoiceAttachPaymentParams, InvoiceCreateParams, InvoiceListParams, InvoicePaymentListParams,
                           InvoicePaymentListParamsPayment,
                           PaymentMethodConfigurationCreateParams, PaymentMethodConfigurationListParams,
                           PaymentMethodConfigurationUpdateParams, PaymentRecordReportPaymentParams,
                           RefundCreateParams, RefundListParams, TaxRateCreateParams)
from stripe.params.checkout import (SessionCreateParams, SessionCreateParamsInvoiceCreationInvoiceData,
                                    SessionCreateParamsLineItem, SessionListParams)

__all__ = [
    "AccountCreateParams", "AccountCreateParamsBusinessProfile", "AccountCreateParamsController",
    "AccountLinkCreateParams", "CreditNoteCreateParams", "CreditNoteListParams", "CustomerBalanceTransactionCreateParams",
    "CustomerBalanceTransactionListParams", "CustomerCreateParams", "CustomerUpdateParams",
    "DisputeListParams", "InvoiceAddLinesParams", "InvoiceAddLinesParamsLine", "InvoiceAttachPaymentParams",
    "InvoiceCreateParams", "InvoiceListParams", "InvoicePaymentListParams", "InvoicePaymentListParamsPayment",
    "PaymentMethodConfigurationCreateParams",
    "PaymentMethodConfigurationListParams", "PaymentMethodConfigurationUpdateParams",
    "PaymentRecordReportPaymentParams", "RefundCreateParams",
    "RefundListParams", "SessionCreateParams", "SessionCreateParamsInvoiceCreationInvoiceData",
    "SessionCreateParamsLineItem", "SessionListParams", "TaxRateCreateParams",
]
