# ruff: noqa: E501, RUF001, W291 - verbatim quotes of Shopee's samples, long lines and typographic quotes included
"""Sample payloads quoted from the reference (shared/reference/shopee-api.md, section 10).

Each string is the sample exactly as the reference quotes it, including the official
samples that are not valid JSON; ``repaired`` applies the repairs the reference describes.
"""

from __future__ import annotations

ORDER_LIST_OK = '{"error": "", "message": "", "response": {"more": true, "next_cursor": "20", "order_list": [{"order_sn": "201218V2Y6E59M"}, {"order_sn": "201218V2W2SG1E"}, {"order_sn": "201218V2VJJC70"}, {"order_sn": "201218V2TEURPF"}, {"order_sn": "201218UXWNTUNP"}, {"order_sn": "201218UWFYSCF1"}, {"order_sn": "201215MPRFUUNN"}, {"order_sn": "201215MCR3V9N8"}, {"order_sn": "201214JASXYXY6"}, {"order_sn": "201214JAJXU6G7"}]}, "request_id": "b937c04e554847789cbf3fe33a0ad5f1"}'

ORDER_LIST_INVALID_TIME = '{"error": "order.order_list_invalid_time", "message": "Start time must be earlier than end time and diff in 15days.", "request_id": "2ca3ed1fe1fab0d1e12e5e1efa90e4ac"}'

ORDER_LIST_WITH_STATUS_BR_GUIDE = '"response": {"more": true, "next_cursor":"2", "order_list": [{"order_sn": "201218V2Y6E59M", "order_status": “READY_TO_SHIP”}, {"order_sn": "201218V2W2SG1E", "order_status": “PENDING_INVOICE”}, ]}'

ORDER_DETAIL_OFFICIAL = """{
{
    "error": "",
    "message": "",
    "request_id": "023c50ace933ba38473a5fb2a7dc8821",
    "response": {
        "order_list": [
            {
                "actual_shipping_fee_confirmed": true,
                "buyer_cancel_reason": "",
                "buyer_cpf_id": null,
                "buyer_user_id": 1170319091,
                "buyer_username": "xt4fdsf96j",
                "cancel_by": "",
                "cancel_reason": "",
                "cod": true,
                "create_time": 1712601591,
                "currency": "VND",
                "days_to_ship": 2,
                "dropshipper": null,
                "dropshipper_phone": null,
                "estimated_shipping_fee": 5000,
                "fulfillment_flag": "fulfilled_by_local_seller",
                "goods_to_declare": false,
                "invoice_data": null,
                "item_list": [
                    {
                        "add_on_deal": false,
                        "add_on_deal_id": 0,
                        "image_info": {
                            "image_url": "https://cf.shopee.vn/file/vn-11134207-7qukw-lf6guphtf6oad3_tn"
                        },
                        "is_b2c_owned_item": false,
                        "is_prescription_item": false,
                        "item_id": 23620853561,
                        "item_name": "🦋giảm giá🦋Kem nở ngực SADOER enlarging breast cream Papaya / Coconut essence 60g Chiết xuất đu đủ, cùi dừa, nở ngực, kem nâng ngực nhanh",
                        "item_sku": "",
                        "main_item": false,
                        "model_discounted_price": 48000,
                        "model_id": 221404189791,
                        "model_name": "60g（Papaya）",
                        "model_original_price": 300000,
                        "model_quantity_purchased": 1,
                        "model_sku": "QAZ-SADOER-05",
                        "order_item_id": 23620853561,
                        "product_location_id": [
                            "VN10XX2UZ"
                        ],
                        "promotion_group_id": 0,
                        "promotion_id": 779222207758537,
                        "promotion_type": "flash_sale",
                        "weight": 0.01,
                        "wholesale": false
                    }
                ],
                "message_to_seller": "",
                "note": "",
                "note_update_time": 0,
                "order_sn": "2404098R48U37H",
                "order_status": "COMPLETED",
                "package_list": [
                    {
                        "group_shipment_id": null,
                        "item_list": [
                            {
                                "item_id": 23620853561,
                                "model_id": 221404189791,
                                "model_quantity": 1,
                                "order_item_id": 23620853561,
                                "product_location_id": "VN10XX2UZ",
                                "promotion_group_id": 0
                            }
                        ],
                        "logistics_status": "LOGISTICS_DELIVERY_DONE",
                        "package_number": "OFG166300791210964",
                        "parcel_chargeable_weight_gram": 10,
                        "shipping_carrier": "5-Day Delivery (SPX)",
                        "logistics_channel_id": 18080
                        "allow_self_design_awb": true,
\t\t\t"sorting_group": "North"
                    }
                ],
                "pay_time": 1712817766,
                "payment_method": "Cash on Delivery",
                "pickup_done_time": 1712726577,
                "recipient_address": {
                    "city": "Huyện Phước Long",
                    "district": "Xã Phong Thạnh Tây B",
                    "full_address": "Ấp******",
                    "name": "P******n",
                    "phone": "******64",
                    "region": "VN",
                    "state": "Bạc Liêu",
                    "town": "",
                    "zipcode": ""
                },
                "region": "VN",
                "reverse_shipping_fee": 0,
                "ship_by_date": 1712671200,
                "shipping_carrier": "Giao Hàng Nhanh",
                "split_up": false,
                "total_amount": 32119,
                "update_time": 1713139948
            }
        ]
    }
}"""

ORDER_DETAIL_NOT_FOUND = '{"error": "error_not_found", "message": "Wrong parameters, detail: the order is not found.", "request_id": "f72084b67edbe084aec5f4373d9f0f21"}'

PUSH_ORDER_STATUS_OFFICIAL = '{"data":{"items":[],"ordersn":"220810QSK8S7BX","status":"PROCESSED","completed_scenario":"","update_time":1660123127},"shop_id":727720655,"code":3,"timestamp":1660123127}'

PUSH_ORDER_STATUS_LIVE = '{"msg_id":"64ca21a145e29bda3a6e31203c800e00","data":{"completed_scenario":null,"items":[],"ordersn":"251214B9XAB0ST","status":"READY_TO_SHIP","update_time":1765689439},"shop_id":336094210,"code":3,"timestamp":1765689440}'

PUSH_ORDER_STATUS_DEMO = '{"msg_id":"85bb37f009e143af84852e17d50b572d","data":{"completed_scenario":null,"items":[],"ordersn":"2512125BFTQGKJ","status":"READY_TO_SHIP","update_time":1736323997},"shop_id":226242306,"code":3,"timestamp":1736323998}'

PUSH_ORDER_STATUS_CSHARP = '{"msg_id":"275d49be9b484e63a5cba42115815b4a","data":{"completed_scenario":"","items":[],"ordersn":"2503119YA2XB8B","status":"PROCESSED","update_time":1741645463},"shop_id":137637267,"code":3,"timestamp":1741645463}'

PUSH_IN_CANCEL_OLD = '{"data": {"items": [], "ordersn": "230103BWFUSJ1C", "status": "IN_CANCEL", "update_time": 1633830492}, "shop_id": 123456, "code": 3, "timestamp": 1633830492}'

PUSH_TRACKING_OFFICIAL = '{"data":{"ordersn":"220809MDBFYFT2","forder_id":"4965804244309504855","package_number":"OFG113701539238152","tracking_no":"BR222263688572VSPXLM71894"},"shop_id":296363855,"code":4,"timestamp":1660123089}'

PUSH_TRACKING_LIVE = '{"msg_id":"1ed4ce6347d5e9ab48f7aeba3cd64800","data":{"ordersn":"260107EHFXHD2W","forder_id":"5869348275461129055","package_number":"OFG221499822241630","tracking_no":"SPXID068120696021"},"shop_id":530635055,"code":4,"timestamp":1767833934}'

PUSH_VERIFICATION = '{"code":0,"data":{"verify_info":"This is a Verification message.Please respond in the certain format."}}'

PUSH_SHIPPING_DOCUMENT = '{"data": {"ordersn":"201118BCKPJQQ8","package_number":"2485710696837122445","status":"READY"},"shop_id":296363855,"code":15,"timestamp":1660123089}'

PUSH_SHOP_AUTHORIZED = '{"data":{"authorize_type":"shop authorization by user","extra":"shop id 600000 (SG) has been authorized successfully","shop_id":60011111,"success":1},"partner_id":2000002,"code":1,"timestamp":1660616278}'

PUSH_SHOP_DEAUTHORIZED = '{"data":{"authorize_type":"user cancel shop authorization","success":1,"extra":"shop id 22000000 (VN) has been cancelled its authorization"},"code":2,"partner_id":800000,"timestamp":1653394175}'

PUSH_SHOP_AUTHORIZATION_EXPIRED = '{"data":{"authorize_type":"expiry","shopid":22000000,"success":1,"extra":"The authorization is expired."},"code":2,"partner_id":800000,"timestamp":1653026985}'

PUSH_AUTHORIZATION_EXPIRY = """{
    "code": 12,
    "timestamp": 1568606634,
    "data": {
        "merchant_expire_soon":[123123,123123,4342,3242342],
        "shop_expire_soon": [23213,243242,342343,42342345656,45345],
        "user_expire_soon": [368765104,368765105,368765106],
        "expire_before": 1619740800, 
        "page_no":1,
        "total_page": 2 
    }
}"""

LOST_PUSH_RESPONSE = '{"error": "-", "message": "-", "warning": "-", "request_id": "1f34a2c99335ffe85744d98e07fe7d41", "response": {"push_message_list": [{"shop_id": 727720655, "code": 3, "timestamp": 1660123127, "data": {"data": {"items": [], "ordersn": "220810QSK8S7BX", "status": "PROCESSED", "completed_scenario": "", "update_time": 1660123127}, "shop_id": 727720655, "code": 3, "timestamp": 1660123127}}], "has_next_page": false, "last_message_id": 176610}}'

SET_PUSH_CONFIG_ERROR = '{"request_id": "b937c04e554847789cbf3fe33a0ad5f1", "error": "common.error_auth", "message": "Invalid sign", "response": {"result": ""}}'

CANCEL_REQUEST_OUT_OF_STOCK = """{
   "cancel_reason": "OUT_OF_STOCK",
   "item_list": [
      {
         "item_id": 1680783,
         "model_id": 327890123
      }
   ],
   "order_sn": "201020SQQ5K2EP"
}"""

CANCEL_REQUEST_PARTIAL = """{
   "cancel_reason": "OUT_OF_STOCK",
   "order_sn": "201020SQQ5K2EP",
   "partial_cancel_item_list": [
      {
         "item_id": 1680783,
         "model_id": 327890123,
         "model_quantity": 2,
         "order_item_id": 0,
         "promotion_group_id": 0
      }
   ]
}"""

CANCEL_OK = '{"error": "", "message": "", "request_id": "2ead12d461c34e7c9275c42c2f70fa7d", "response": {"update_time": 1603184533}}'

CANCEL_PARAM_ERROR = '{"error": "error_param", "message": "Wrong parameters, detail: order_sn is a required field.", "request_id": "4d6a1cfcb68b2d1b0f0110e723614a22"}'

BUYER_CANCELLATION_REQUEST = '{"operation": "ACCEPT", "order_sn": "201016F6B94MQK"}'

BUYER_CANCELLATION_OK = '{"request_id": "b937c04e554847789cbf3fe33a0ad5f1", "error": "", "message": "", "response": {"update_time": 14981918191}}'

BUYER_CANCELLATION_PARAM_ERROR = '{"error": "error_param", "message": "Wrong parameters, detail: order_sn is a required field.", "request_id": "103bab70c9709ceff5154335dfc7b7e1"}'

TOKEN_GET_OFFICIAL = """{
    "error": "",
    "message": ""
    "request_id": "f2a678875e669fdbdb4cbc6a9a18b895",
    "shop_id_list": [368765100, 368765098, 368765097],
    "access_token": "6b5a46716e474d6f6e59777659459849",
    "refresh_token": "4c7259534969484e71734d695a6e0d55",
    "expire_in": 1767001812
}"""

TOKEN_GET_INVALID_CODE = '{"error": "error_auth", "message": "Invalid code", "request_id": "264e31f1f14eb20834e485dc319ffa85"}'

REFRESH_OK = '{"error": "", "message": "", "request_id": "83089a02e46d77b64882c0c93aba5267", "partner_id": 2001887, "shop_id": 322300222, "access_token": "71594a4c54537649697341796363674a", "refresh_token": "516c6b577753554375764a63704d7245", "expire_in": 14400}'

REFRESH_REQUEST = '{"partner_id": 2001887, "refresh_token": "4c7259534969484e71734d695a6e6d55", "shop_id": 322300222}'

REFRESH_INVALID = '{"error": "error_auth", "message": "Invalid refresh_token.", "request_id": "d95d6db199da20e3fe1c913a54dc6746"}'

UPDATE_STOCK_REQUEST = '{"item_id": 1000, "stock_list": [{"model_id": 0, "seller_stock": [{"location_id": "-", "stock": 0}]}]}'

UPDATE_STOCK_RESPONSE = '{"error": "-", "message": "-", "warning": "-", "request_id": "-", "response": {"failure_list": [{"model_id": 0, "failed_reason": "-"}], "success_list": [{"model_id": 0, "location_id": "-", "stock": 0}]}}'

UPDATE_STOCK_ERROR = '{"error": "product.error_param", "message": "invalid field ItemId: value must  Not Null", "request_id": "11484dd6d9e203edd5d332551249de57"}'

UPDATE_STOCK_GUIDE_NO_MODEL = (
    '{"item_id": 1000, "stock_list": [{"seller_stock": [{"stock": 100}]}]}'
)

UPDATE_STOCK_GUIDE_MODELS = '{"item_id": 2000, "stock_list": [{"model_id": 3456, "seller_stock": [{"stock": 100}]}, {"model_id": 1234, "seller_stock": [{"stock": 100}]}]}'


def repaired_order_detail() -> str:
    """The official get_order_detail sample made JSON: drop the doubled opening brace and add
    the comma missing after ``"logistics_channel_id": 18080`` (tabs are valid whitespace)."""
    text = ORDER_DETAIL_OFFICIAL.replace("{\n{", "{", 1)
    return text.replace('"logistics_channel_id": 18080\n', '"logistics_channel_id": 18080,\n', 1)


def repaired_token_get() -> str:
    """The official token/get sample with the comma missing after ``"message": ""``."""
    return TOKEN_GET_OFFICIAL.replace('"message": ""\n', '"message": "",\n', 1)


def repaired_order_list_with_status() -> str:
    """The BR guide's fragment as an envelope: straight quotes, no trailing comma."""
    text = ORDER_LIST_WITH_STATUS_BR_GUIDE.replace("\u201c", '"').replace("\u201d", '"')
    return "{" + text.replace("}, ]}", "}]}") + "}"
