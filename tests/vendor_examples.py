"""The example answers of the vendor documentation (seed/kopechka-api-docs.txt), byte for byte."""

PROFILE = """{
"success": true,
"data": {
"id": "user_id",
"email": "[email protected]",
"username": "username",
"balance": 150.75,
"role": "user",
"emailVerified": true,
"isActive": true,
"createdAt": "2024-01-01T00:00:00Z",
"updatedAt": "2024-01-01T00:00:00Z"
}
}"""

BALANCE = """{
"success": true,
"data": {
"balance": 150.75
}
}"""

DOMAINS = """{
"success": true,
"data": [
{
"id": "domain_id",
"name": "example.com",
"price": 5.00,
"category": "popular",
"description": "Popular domain for general use"
}
]
}"""

ORDERS = """{
"success": true,
"data": [
{
"id": "order_id",
"orderId": "API-1234567890",
"email": "[email protected]",
"domain": "example.com",
"site": "instagram.com",
"status": "active",
"price": 5.00,
"createdAt": "2024-01-01T00:00:00Z"
}
],
"pagination": {
"page": 1,
"limit": 10,
"total": 25,
"pages": 3
}
}"""

ORDER = """{
"success": true,
"data": {
"id": "order_id",
"orderId": "API-1234567890",
"email": "[email protected]",
"domain": "example.com",
"site": "instagram.com",
"status": "active",
"price": 5.00,
"duration": 10,
"createdAt": "2024-01-01T00:00:00Z",
"endTime": "2024-01-01T00:10:00Z"
}
}"""

CREATED = """{
"success": true,
"message": "Order created successfully",
"data": {
"orderId": "API-1234567890",
"email": "[email protected]",
"domain": "example.com",
"site": "instagram.com",
"price": 5.00,
"status": "pending",
"createdAt": "2024-01-01T00:00:00Z"
}
}"""

CANCELLED = """{
"success": true,
"message": "Order cancelled and refund processed",
"refundAmount": 5.00
}"""

MESSAGES = """{
"success": true,
"messages": [
{
"id": "msg_123",
"from": "[email protected]",
"subject": "Verification Code",
"content": "Your verification code is: 123456",
"receivedAt": "2024-01-01T12:00:00Z"
}
],
"order": {
"id": "order_id",
"email": "[email protected]",
"domain": "example.com",
"status": "active",
"created_at": "2024-01-01T00:00:00Z"
}
}"""

POLLING = """{
"success": true,
"message": "Email polling started",
"data": {
"orderId": "API-1234567890",
"pollingStatus": "active"
}
}"""
