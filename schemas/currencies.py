"""The current (active) ISO 4217 alphabetic currency codes that expense lines may use."""

from __future__ import annotations

# ISO 4217 "List One" (currencies, funds, precious metals and the X-codes) as of amendment 180
# (in force 2026-01-01). Withdrawn codes are deliberately absent: ANG (replaced by XCG, 2025),
# BGN (euro, 2026), CUC (2021), HRK (euro, 2023), SLL (redenominated to SLE), ZWL (replaced by
# ZWG, 2024). When ISO publishes an amendment, edit this list and regenerate schemas/json/.
_LIST_ONE = """
    AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BHD BIF BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN
    ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP
    PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV
    WST XAD XAF XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XTS XUA XXX YER ZAR
    ZMW ZWG
"""

ISO_4217_CODES: frozenset[str] = frozenset(_LIST_ONE.split())
"""Every active alphabetic code, upper case, three letters."""
