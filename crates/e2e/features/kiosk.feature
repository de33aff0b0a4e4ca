Feature: Kiosk shopping
  At the mall's kiosk a customer fills a basket and checks out; the depot's bots fetch
  the items, the customer pays the invoice at pick-up and the order completes.

  Scenario: From basket to a completed order
    Given a store "Waldorf Books" selling:
      | name         | price |
      | Gherkin Book | 12.50 |
      | Pact Book    |  9.99 |
    And a store "Statler Tea" selling:
      | name       | price |
      | Green Tea  |  4.25 |
    And a customer "Ada" with a payment authorized for 100.00
    And "Ada" starts a basket
    And "Ada" adds 2 "Gherkin Book"
    And "Ada" adds 1 "Pact Book"
    And "Ada" adds 3 "Green Tea"
    When "Ada" checks out
    Then the order is "approved"
    And the order totals 47.74
    And the shopping list is "available" with stops:
      | store         | product      | quantity |
      | Waldorf Books | Gherkin Book | 2        |
      | Waldorf Books | Pact Book    | 1        |
      | Statler Tea   | Green Tea    | 3        |
    When bot "bot-7" is assigned the shopping list
    Then the shopping list is "assigned"
    When the bot completes the shopping list
    Then the order is "ready"
    And the invoice is "pending" for 47.74
    When "Ada" pays the invoice
    Then the invoice is "paid" for 47.74
    And the order is "completed"
    And "Ada" was notified of "order_created, order_ready"
